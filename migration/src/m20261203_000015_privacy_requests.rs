//! Personal-data requests (Ley 21.719): a customer's export of everything the store holds about
//! them (and, next, erasures), with the date the store must have answered by. An export's ZIP is
//! a private file named by `storage_key`, downloadable until `expires_at`.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const REQUESTS: &str = "privacy_requests";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(REQUESTS))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(
                        col("kind")
                            .string_len(16)
                            .not_null()
                            .check(one_of("kind", &["export", "erasure"])),
                    )
                    .col(col("state").string_len(16).not_null().check(one_of(
                        "state",
                        &["pending", "processing", "ready", "failed"],
                    )))
                    .col(timestamp("requested_at"))
                    .col(timestamp("due_at"))
                    .col(timestamp_null("completed_at"))
                    // Until when the export may be downloaded.
                    .col(timestamp_null("expires_at"))
                    .col(col("storage_key").string_len(255).null())
                    .col(col("size_bytes").big_integer().null())
                    .col(col("error").string_len(500).null())
                    .col(col("downloads").integer().not_null().default(0))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk_cascade(REQUESTS, "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(REQUESTS, &["user_id", "requested_at"]))
            .await?;
        manager
            .create_index(index(REQUESTS, &["requested_at"]))
            .await?;
        // One open request of a kind per customer.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_privacy_requests_open ON privacy_requests (user_id, kind) WHERE state IN ('pending', 'processing')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new(REQUESTS)).to_owned())
            .await
    }
}
