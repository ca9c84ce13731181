//! Database connection (SQLite or PostgreSQL), migrations and the write-transaction helper.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::config::PlanCacheMode;
use crate::metrics::Metrics;

pub type Db = DatabaseConnection;

/// Opens the pool. For SQLite: creates the file's directory, WAL journal, a busy timeout, foreign keys on.
/// For PostgreSQL: the connections' `plan_cache_mode` (see [`PlanCacheMode`]).
/// Every executed statement is counted in `db_statements_total`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    plan_cache: PlanCacheMode,
    metrics: &Metrics,
) -> anyhow::Result<Db> {
    if let Some(path) = sqlite_file_path(url) {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
        }
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |o| o.options([("plan_cache_mode", plan_cache.as_postgres())]))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let mut db = Database::connect(opts).await?;
    let m = metrics.clone();
    db.set_metric_callback(move |info| m.observe_statement(info.elapsed, info.failed));
    Ok(db)
}

/// `sqlite://data/x.db?mode=rwc` → `data/x.db`; `None` for in-memory and non-SQLite URLs.
fn sqlite_file_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

pub async fn migrate(db: &Db) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Whether every known migration has been applied (readiness).
pub async fn migrations_current(db: &Db) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

/// A transaction that will write: on SQLite it takes the write lock up front (`BEGIN IMMEDIATE`), so
/// a read-then-write sequence cannot fail half-way with a busy snapshot; on PostgreSQL it is a plain `BEGIN`.
pub async fn begin_write(db: &Db) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::sqlite_file_path;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file_path("sqlite://data/dispensary.db?mode=rwc").as_deref(),
            Some("data/dispensary.db")
        );
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://localhost/x"), None);
    }
}
