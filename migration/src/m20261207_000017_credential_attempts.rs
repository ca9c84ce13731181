//! The account lockout's ledger: one row per attempt at an account's credentials (a password, a
//! second-factor or recovery code) that did not succeed — or has not finished yet. An attempt is
//! written before the credential is evaluated and deleted once it proved right, so concurrent
//! guesses each hold a place and no more than the limit are ever evaluated.

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "credential_attempts";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(TABLE))
                    .col(id_pk())
                    .col(col("user_id").big_integer().not_null())
                    // `password` or `second_factor`.
                    .col(col("kind").string_len(32).not_null())
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk_cascade(TABLE, "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(TABLE, &["user_id", "created_at"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new(TABLE)).to_owned())
            .await
    }
}
