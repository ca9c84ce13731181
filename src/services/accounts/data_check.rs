//! `dispensary check-data`: the stored rows that break a rule the API now enforces on input.
//! They are reported, never rewritten: an operator decides what each one becomes (an email with
//! a display name may be the only way to reach that customer).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::Db;
use crate::domain::Email;
use crate::entities::user;
use crate::error::AppResult;

/// One stored value that fails today's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub table: &'static str,
    pub id: i64,
    pub field: &'static str,
    pub problem: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} id={} {}: {}",
            self.table, self.id, self.field, self.problem
        )
    }
}

/// Every finding, by table and id. The value itself is not repeated (it is personal data).
pub async fn run(db: &Db) -> AppResult<Vec<Finding>> {
    let users: Vec<(i64, String)> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::Email)
        // An erased account's row is a tombstone under a pseudonym, not an address.
        .filter(user::Column::ErasedAt.is_null())
        .order_by_asc(user::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(users
        .into_iter()
        .filter_map(|(id, email)| {
            let normal = email.trim().to_lowercase();
            let problem = Email::problem(&normal)
                .map(str::to_string)
                .or_else(|| {
                    crate::domain::forbidden_control(&email)
                        .map(|c| format!("holds the control character U+{:04X}", c as u32))
                })
                .or_else(|| (normal != email).then(|| "not trimmed and lower-cased".to_string()))?;
            Some(Finding {
                table: "users",
                id,
                field: "email",
                problem,
            })
        })
        .collect())
}
