//! The transactional outbox: one row per domain event, written in the same transaction as the
//! change and its audit row, and handed to subscribers afterwards by the job runner.

use crate::util::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("outbox_events"))
                    .col(id_pk())
                    .col(col("event_type").string_len(64).not_null())
                    .col(col("payload").json_binary().not_null())
                    .col(col("aggregate_type").string_len(64).not_null())
                    .col(col("aggregate_id").big_integer().null())
                    .col(col("audit_log_id").big_integer().null())
                    .col(col("actor_user_id").big_integer().null())
                    .col(col("trace_id").string_len(128).null())
                    .col(timestamp("occurred_at"))
                    .col(timestamp_null("dispatched_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("outbox_events", &["dispatched_at", "id"]))
            .await?;
        manager
            .create_index(index(
                "outbox_events",
                &["aggregate_type", "aggregate_id", "id"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("outbox_events")).to_owned())
            .await
    }
}
