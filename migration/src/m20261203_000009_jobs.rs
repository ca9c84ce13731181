//! Durable background jobs: claimed with a lease (renewed by a heartbeat), retried with backoff,
//! dead-lettered after `max_attempts`, de-duplicated by an optional unique key.

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
                    .table(Alias::new("jobs"))
                    .col(id_pk())
                    .col(col("kind").string_len(64).not_null())
                    .col(col("payload").json_binary().not_null())
                    .col(col("state").string_len(16).not_null().check(one_of(
                        "state",
                        &["queued", "running", "done", "failed", "dead"],
                    )))
                    .col(timestamp("run_at"))
                    .col(col("attempts").integer().not_null().default(0))
                    .col(col("max_attempts").integer().not_null())
                    .col(col("locked_by").string_len(128).null())
                    .col(timestamp_null("locked_until"))
                    .col(col("last_error").text().null())
                    .col(col("unique_key").string_len(255).null().unique_key())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        // Claims look for due jobs by state and time; operators list by state and kind.
        manager
            .create_index(index("jobs", &["state", "run_at", "id"]))
            .await?;
        manager
            .create_index(index("jobs", &["kind", "state", "id"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("jobs")).to_owned())
            .await
    }
}
