//! Sessions: one row per refresh-token family (one login), with what a user needs to recognise
//! it — when it began and was last used, from which address and user agent. Whether a session is
//! live stays where it was decided before: a family with an unrevoked, unexpired refresh token.
//! Families that exist already get a row from their tokens (no address or user agent known).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "sessions";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(TABLE))
                    .col(id_pk())
                    .col(col("family_id").string_len(64).not_null().unique_key())
                    .col(col("user_id").big_integer().not_null())
                    .col(col("ip").string_len(64).null())
                    .col(col("user_agent").string_len(512).null())
                    .col(timestamp("created_at"))
                    .col(timestamp("last_used_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user_id")
                            .from(Alias::new(TABLE), Alias::new("user_id"))
                            .to(Alias::new("users"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(TABLE, &["user_id", "last_used_at"]))
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO sessions (family_id, user_id, created_at, last_used_at)
                 SELECT family_id, MIN(user_id), MIN(created_at), MAX(created_at)
                 FROM auth_tokens GROUP BY family_id",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new(TABLE)).to_owned())
            .await
    }
}
