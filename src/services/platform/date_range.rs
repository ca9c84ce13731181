//! The `dateFrom`/`dateTo` filter of the admin lists (orders, the audit log): both bounds
//! inclusive, and `dateTo` before `dateFrom` refused rather than answered with nothing.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition};

use crate::error::{AppError, AppResult};

/// The condition on `column` for `from ≤ column ≤ to` (either bound optional); 400
/// `dateTo`: `before_date_from` when `to` is before `from`.
pub fn between<C: ColumnTrait>(
    column: C,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> AppResult<Condition> {
    if let (Some(a), Some(b)) = (from, to) {
        if b < a {
            return Err(AppError::invalid(
                "dateTo",
                "before_date_from",
                "dateTo must not be before dateFrom",
            ));
        }
    }
    let mut cond = Condition::all();
    if let Some(d) = from {
        cond = cond.add(column.gte(d));
    }
    if let Some(d) = to {
        cond = cond.add(column.lte(d));
    }
    Ok(cond)
}
