//! TOTP two-factor authentication: one row per user who set it up, holding the shared secret
//! encrypted with `DATA_ENCRYPTION_KEY` (never in clear), whether it is enabled, and the last
//! time step a code was accepted for (a code is never accepted twice); and the user's single-use
//! recovery codes, stored as SHA-256 hashes.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TWO_FACTOR: &str = "user_two_factor";
const RECOVERY: &str = "recovery_codes";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(TWO_FACTOR))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null().unique_key())
                    // `v1:` + base64(nonce ‖ XChaCha20-Poly1305 ciphertext), the user id as
                    // associated data.
                    .col(col("secret").string_len(255).not_null())
                    .col(timestamp_null("enabled_at"))
                    .col(col("last_step").big_integer().null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk_cascade(TWO_FACTOR, "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(RECOVERY))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("code_hash").string_len(64).not_null().unique_key())
                    .col(timestamp_null("used_at"))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk_cascade(RECOVERY, "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index(RECOVERY, &["user_id"])).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [RECOVERY, TWO_FACTOR] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
