//! Single-use links mailed to a user: to verify an email address (at registration, on request,
//! and for an email change, which takes effect only when the new address is verified) and to
//! reset a forgotten password; and when a user's address was verified.
//!
//! A link's token is random and only its SHA-256 is stored (`token_hash`), written by the mail job
//! when it sends the message; `consumed_at` marks a link used or replaced by a newer one.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "account_links";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("users"))
                    .add_column(timestamp_null("email_verified_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(TABLE))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("purpose").string_len(32).not_null())
                    // The address the link goes to (for an email change, the new one).
                    .col(col("email").string_len(254).not_null())
                    // For an email change: the address in use when it was asked for (told of it).
                    .col(col("previous_email").string_len(254).null())
                    .col(col("token_hash").string_len(64).null().unique_key())
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("consumed_at"))
                    .col(timestamp("created_at"))
                    .check(one_of("purpose", &["verify_email", "reset_password"]))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_links_user_id")
                            .from(Alias::new(TABLE), Alias::new("user_id"))
                            .to(Alias::new("users"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(TABLE, &["user_id", "purpose", "created_at"]))
            .await?;
        manager.create_index(index(TABLE, &["expires_at"])).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new(TABLE)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("users"))
                    .drop_column(Alias::new("email_verified_at"))
                    .to_owned(),
            )
            .await
    }
}
