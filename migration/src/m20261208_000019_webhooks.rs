//! Outbound webhooks (Standard Webhooks): the endpoints integrators register, one delivery per
//! event and endpoint, and a log row per attempt.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ENDPOINTS: &str = "webhook_endpoints";
const DELIVERIES: &str = "webhook_deliveries";
const ATTEMPTS: &str = "webhook_attempts";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(ENDPOINTS))
                    .col(id_pk())
                    .col(col("url").string_len(2048).not_null())
                    .col(col("description").string_len(500).null())
                    // Space-separated webhook event types.
                    .col(col("event_types").text().not_null())
                    .col(col("is_active").boolean().not_null())
                    // Sealed under DATA_ENCRYPTION_KEY: signing needs the secret itself.
                    .col(col("secret").text().not_null())
                    .col(col("previous_secret").text().null())
                    .col(timestamp_null("previous_secret_until"))
                    // `gone` (the receiver answered 410) or `failing` (24 h of failures).
                    .col(col("disabled_reason").string_len(32).null())
                    .col(timestamp_null("failing_since"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(DELIVERIES))
                    .col(id_pk())
                    .col(col("endpoint_id").big_integer().not_null())
                    // The outbox event it carries (its `webhook-id` is `msg_<event_id>`).
                    .col(col("event_id").big_integer().not_null())
                    .col(col("event_type").string_len(64).not_null())
                    .col(col("aggregate").string_len(96).not_null())
                    // The exact body sent (signed as is).
                    .col(col("payload").text().not_null())
                    // pending, delivered, failed.
                    .col(col("state").string_len(16).not_null())
                    .col(col("attempts").integer().not_null())
                    .col(timestamp("next_attempt_at"))
                    .col(col("last_status").integer().null())
                    .col(col("last_error").string_len(1024).null())
                    .col(timestamp("created_at"))
                    .col(timestamp_null("delivered_at"))
                    .check(one_of("state", &["pending", "delivered", "failed"]))
                    .foreign_key(&mut fk_cascade(DELIVERIES, "endpoint_id", ENDPOINTS))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(DELIVERIES, &["endpoint_id", "event_id"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(DELIVERIES, &["endpoint_id", "state", "aggregate"]))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(ATTEMPTS))
                    .col(id_pk())
                    .col(col("delivery_id").big_integer().not_null())
                    .col(timestamp("attempted_at"))
                    .col(col("status").integer().null())
                    .col(col("latency_ms").big_integer().not_null())
                    // The first KB of the answer.
                    .col(col("response_excerpt").text().null())
                    .col(col("error").string_len(1024).null())
                    .foreign_key(&mut fk_cascade(ATTEMPTS, "delivery_id", DELIVERIES))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(ATTEMPTS, &["delivery_id"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [ATTEMPTS, DELIVERIES, ENDPOINTS] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
