//! Payments and the provider events received for them (the replay/duplicate guard).

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
                    .table(Alias::new("payments"))
                    .col(id_pk())
                    .col(col("order_id").big_integer().not_null())
                    .col(col("provider").string_len(16).not_null())
                    .col(col("provider_txn_id").string_len(128).not_null())
                    .col(col("status").string_len(20).not_null())
                    .col(col("amount_cents").big_integer().not_null())
                    .col(col("auth_code").string_len(64).null())
                    .col(col("idempotency_key").string_len(255).null())
                    .col(col("raw_payload").json_binary().null())
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of("provider", &["webpay", "flow", "mp", "test"]))
                    .check(one_of(
                        "status",
                        &[
                            "initiated",
                            "pending",
                            "paid",
                            "failed",
                            "refunded",
                            "refund_required",
                        ],
                    ))
                    .check(Expr::col(Alias::new("amount_cents")).gte(0))
                    .foreign_key(&mut fk_restrict("payments", "order_id", "orders"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("payments", &["provider", "provider_txn_id"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("payments", &["order_id", "status"]))
            .await?;
        manager
            .create_index(index("payments", &["status", "created_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("payment_events"))
                    .col(id_pk())
                    .col(col("provider").string_len(16).not_null())
                    .col(col("event_id").string_len(128).not_null())
                    .col(col("payment_id").big_integer().null())
                    .col(timestamp("received_at"))
                    .col(col("payload").json_binary().not_null())
                    .col(col("outcome").string_len(32).not_null())
                    .foreign_key(&mut fk_restrict("payment_events", "payment_id", "payments"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("payment_events", &["provider", "event_id"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["payment_events", "payments"] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
