//! Erasure and blocking (Ley 21.719): when a customer asked for their account to be erased (the
//! grace period runs; sign-in is refused), when it was erased (the row is then a tombstone), and
//! when an admin blocked the processing of their data (the account is read-only) and why.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &[&str] = &[
    "erasure_requested_at",
    "erased_at",
    "processing_blocked_at",
    "processing_blocked_reason",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for name in COLUMNS {
            let column = if name.ends_with("_reason") {
                col(name).string_len(500).null().to_owned()
            } else {
                timestamp_null(name)
            };
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("users"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in COLUMNS.iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("users"))
                        .drop_column(Alias::new(*name))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
