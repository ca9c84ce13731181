//! Which subscriber has which outbox event, while the event waits to be dispatched to all of them.
//! A row is written when a subscriber has taken an event; once every interested subscriber has it,
//! the event gets its `dispatched_at` and its rows here are deleted.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("outbox_deliveries"))
                    .col(col("event_id").big_integer().not_null())
                    .col(col("subscriber").string_len(64).not_null())
                    .col(timestamp("delivered_at"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("event_id"))
                            .col(Alias::new("subscriber")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_deliveries_event_id")
                            .from(Alias::new("outbox_deliveries"), Alias::new("event_id"))
                            .to(Alias::new("outbox_events"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("outbox_deliveries"))
                    .to_owned(),
            )
            .await
    }
}
