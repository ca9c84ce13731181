//! Uniqueness checks that answer `conflict` with the field's name before the database would
//! (the unique indexes remain the final guard, mapped to the same `conflict`).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::error::{AppError, AppResult};

/// Fails with `conflict` (`issue: already_exists`) when a row of `E` has `column = value`,
/// other than the row whose `id_column` is `except`.
pub async fn ensure_free<E, C>(
    conn: &C,
    column: E::Column,
    value: &str,
    except: Option<(E::Column, i64)>,
    field: &str,
    message: &str,
) -> AppResult<()>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let mut q = E::find().filter(column.eq(value));
    if let Some((id_column, id)) = except {
        q = q.filter(id_column.ne(id));
    }
    if q.count(conn).await? > 0 {
        return Err(AppError::conflict_field(field, "already_exists", message));
    }
    Ok(())
}
