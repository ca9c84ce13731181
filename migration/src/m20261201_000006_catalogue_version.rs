//! The catalogue version, bumped by triggers in the same transaction as any write that changes
//! what catalogue reads return (categories, products, variants — prices and stock —, reviews, and
//! reviewers' names, which review listings show).
//!
//! On PostgreSQL the version is a sequence (taking a value never waits on another transaction,
//! where one shared row would serialize every catalogue write and invite deadlocks), and the
//! trigger also `NOTIFY`s `catalogue_changed`, delivered on commit, so that other server processes
//! drop their response caches at once. On SQLite, which has one writer at a time and no
//! notifications, it is the one row of `catalogue_versions`, which other processes poll.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose every write changes catalogue answers.
const TABLES: [&str; 4] = [
    "categories",
    "products",
    "product_variants",
    "product_reviews",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared("CREATE SEQUENCE catalogue_version_seq")
                    .await?;
                db.execute_unprepared(
                    "CREATE FUNCTION bump_catalogue_version() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                       PERFORM nextval('catalogue_version_seq');
                       PERFORM pg_notify('catalogue_changed', '');
                       RETURN NULL;
                     END $$",
                )
                .await?;
                for t in TABLES {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {t}_catalogue_version AFTER INSERT OR UPDATE OR DELETE ON {t}
                         FOR EACH STATEMENT EXECUTE FUNCTION bump_catalogue_version()"
                    ))
                    .await?;
                }
                db.execute_unprepared(
                    "CREATE TRIGGER users_catalogue_version AFTER UPDATE OF name OR DELETE ON users
                     FOR EACH STATEMENT EXECUTE FUNCTION bump_catalogue_version()",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    "CREATE TABLE catalogue_versions (id BIGINT NOT NULL PRIMARY KEY, version BIGINT NOT NULL)",
                )
                .await?;
                db.execute_unprepared("INSERT INTO catalogue_versions (id, version) VALUES (1, 0)")
                    .await?;
                let bump =
                    "BEGIN UPDATE catalogue_versions SET version = version + 1 WHERE id = 1; END";
                for t in TABLES {
                    for event in ["INSERT", "UPDATE", "DELETE"] {
                        let e = event.to_lowercase();
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER {t}_catalogue_version_{e} AFTER {event} ON {t} {bump}"
                        ))
                        .await?;
                    }
                }
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER users_catalogue_version_name AFTER UPDATE OF name ON users {bump}"
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER users_catalogue_version_delete AFTER DELETE ON users {bump}"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                for t in TABLES.iter().chain(["users"].iter()) {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS {t}_catalogue_version ON {t}"
                    ))
                    .await?;
                }
                db.execute_unprepared("DROP FUNCTION IF EXISTS bump_catalogue_version()")
                    .await?;
                db.execute_unprepared("DROP SEQUENCE IF EXISTS catalogue_version_seq")
                    .await?;
            }
            _ => {
                for t in TABLES {
                    for e in ["insert", "update", "delete"] {
                        db.execute_unprepared(&format!(
                            "DROP TRIGGER IF EXISTS {t}_catalogue_version_{e}"
                        ))
                        .await?;
                    }
                }
                for name in ["name", "delete"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS users_catalogue_version_{name}"
                    ))
                    .await?;
                }
                db.execute_unprepared("DROP TABLE catalogue_versions")
                    .await?;
            }
        }
        Ok(())
    }
}
