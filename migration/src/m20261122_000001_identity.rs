//! Identity and audit: users, profiles, refresh tokens, revoked access tokens, system logs.

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
                    .table(Alias::new("users"))
                    .col(id_pk())
                    .col(
                        ColumnDef::new(Alias::new("name"))
                            .string_len(120)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("email"))
                            .string_len(254)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("rut"))
                            .string_len(12)
                            .null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("password_hash"))
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Alias::new("role")).string_len(16).not_null())
                    .col(ColumnDef::new(Alias::new("is_active")).boolean().not_null())
                    .col(
                        ColumnDef::new(Alias::new("validated_medicinal"))
                            .boolean()
                            .not_null(),
                    )
                    .col(timestamp_null("deleted_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of("role", &["customer", "admin"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("users", &["role", "is_active"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("user_profiles"))
                    .col(id_pk())
                    .col(
                        ColumnDef::new(Alias::new("user_id"))
                            .big_integer()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Alias::new("phone")).string_len(32).null())
                    .col(ColumnDef::new(Alias::new("birthdate")).date().null())
                    .col(ColumnDef::new(Alias::new("address")).string_len(255).null())
                    .col(ColumnDef::new(Alias::new("comuna")).string_len(80).null())
                    .col(ColumnDef::new(Alias::new("region")).string_len(80).null())
                    .col(
                        ColumnDef::new(Alias::new("default_address_id"))
                            .big_integer()
                            .null(),
                    )
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk_restrict("user_profiles", "user_id", "users"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("auth_tokens"))
                    .col(id_pk())
                    .col(
                        ColumnDef::new(Alias::new("user_id"))
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("jti"))
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("family_id"))
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Alias::new("kind")).string_len(16).not_null())
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("revoked_at"))
                    .col(
                        ColumnDef::new(Alias::new("replaced_by"))
                            .string_len(64)
                            .null(),
                    )
                    .col(timestamp("created_at"))
                    .check(one_of("kind", &["refresh"]))
                    .foreign_key(&mut fk_restrict("auth_tokens", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("auth_tokens", &["family_id"]))
            .await?;
        manager
            .create_index(index("auth_tokens", &["user_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("revoked_access_tokens"))
                    .col(id_pk())
                    .col(
                        ColumnDef::new(Alias::new("jti"))
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(timestamp("expires_at"))
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("revoked_access_tokens", &["expires_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("system_logs"))
                    .col(id_pk())
                    .col(
                        ColumnDef::new(Alias::new("actor_user_id"))
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("action"))
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alias::new("entity"))
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Alias::new("entity_id")).big_integer().null())
                    .col(ColumnDef::new(Alias::new("meta")).json_binary().not_null())
                    .col(
                        ColumnDef::new(Alias::new("trace_id"))
                            .string_len(128)
                            .null(),
                    )
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk_restrict("system_logs", "actor_user_id", "users"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("system_logs", &["created_at"]))
            .await?;
        manager
            .create_index(index("system_logs", &["actor_user_id", "created_at"]))
            .await?;
        manager
            .create_index(index("system_logs", &["entity", "entity_id", "created_at"]))
            .await?;
        manager
            .create_index(index("system_logs", &["action", "created_at"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "system_logs",
            "revoked_access_tokens",
            "auth_tokens",
            "user_profiles",
            "users",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
