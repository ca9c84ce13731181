//! API keys for the store's other systems (ERP, accounting, couriers): a machine principal
//! limited to its scopes. Only the key's SHA-256 is stored; the key itself is shown once. Audit
//! rows name the key a write was made with (`system_logs.actor_api_key_id`).

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "api_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(TABLE))
                    .col(id_pk())
                    // A short random id that tells keys apart in lists and logs (`ak_…`).
                    .col(col("public_id").string_len(32).not_null().unique_key())
                    .col(col("name").string_len(100).not_null())
                    // Hex SHA-256 of the whole key.
                    .col(col("key_hash").string_len(64).not_null().unique_key())
                    // Space-separated, e.g. `orders:read products:read`.
                    .col(col("scopes").string_len(200).not_null())
                    // The admin who created it (no foreign key: a key outlives its creator's account).
                    .col(col("created_by_user_id").big_integer().null())
                    .col(timestamp("created_at"))
                    .col(timestamp_null("expires_at"))
                    .col(timestamp_null("last_used_at"))
                    .col(timestamp_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("system_logs"))
                    .add_column(col("actor_api_key_id").big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("system_logs"))
                    .drop_column(Alias::new("actor_api_key_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new(TABLE)).to_owned())
            .await
    }
}
