//! Consents (Ley 21.719): one row per consent given — to the privacy policy of a version, or to
//! the processing of health data (medicinal documents) — with where it was given from and when it
//! was withdrawn. Rows are never rewritten except to record a withdrawal, so they are the proof.
//! At most one live (not withdrawn) row per user, purpose and policy version.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CONSENTS: &str = "consents";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(CONSENTS))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(
                        col("purpose")
                            .string_len(32)
                            .not_null()
                            .check(one_of("purpose", &["privacy_policy", "health_data"])),
                    )
                    .col(col("policy_version").string_len(32).not_null())
                    .col(
                        col("source")
                            .string_len(32)
                            .not_null()
                            .check(one_of("source", &["registration", "request", "document"])),
                    )
                    // False for the policy version recorded by a registration that did not tick
                    // the acceptance box.
                    .col(col("explicit").boolean().not_null())
                    .col(timestamp("granted_at"))
                    .col(timestamp_null("withdrawn_at"))
                    .col(col("ip").string_len(45).null())
                    .col(col("user_agent").string_len(512).null())
                    .foreign_key(&mut fk_cascade(CONSENTS, "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(CONSENTS, &["user_id", "purpose"]))
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_consents_live ON consents (user_id, purpose, policy_version) WHERE withdrawn_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new(CONSENTS)).to_owned())
            .await
    }
}
