//! Database connection (SQLite or PostgreSQL), migrations and the write-transaction helper.

use std::future::Future;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::LockType;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    QuerySelect, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::config::PlanCacheMode;
use crate::error::AppResult;
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

/// Locks the rows `q` reads until the transaction ends, on PostgreSQL. Every writer takes its locks
/// in the one order documented in ARCHITECTURE.md ("Lock order"). The lock is `FOR NO KEY UPDATE`,
/// not `FOR UPDATE`: inserting a row that references a locked one (a payment event for a payment,
/// an order line for a variant, an order for a coupon) takes `FOR KEY SHARE` on it, which `FOR
/// UPDATE` would block and so deadlock two writers that each inserted first. No writer changes a
/// primary key. SQLite's write transaction (`BEGIN IMMEDIATE`) is already exclusive.
pub fn for_update<Q: QuerySelect>(q: Q, backend: DatabaseBackend) -> Q {
    if backend == DatabaseBackend::Postgres {
        q.lock(LockType::NoKeyUpdate)
    } else {
        q
    }
}

/// How many times in all a change that lost to a concurrent one is run (see [`retry_contended`]).
pub const CONTENTION_ATTEMPTS: u32 = 4;

/// Runs `attempt` and, while it fails with [`AppError::contention`] (its transaction was rolled
/// back whole by a deadlock or serialization failure), runs it again after a short pause with
/// jitter, at most [`CONTENTION_ATTEMPTS`] times in all; then the contention error stands (503 with
/// `Retry-After`). Counted in `db_contention_total{outcome}`.
pub async fn retry_contended<T, F, Fut>(metrics: &Metrics, mut attempt: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if e.is_contention() && tries < CONTENTION_ATTEMPTS => {
                metrics.db_contention.with_label_values(&["retried"]).inc();
                tokio::time::sleep(contention_pause(tries)).await;
                tries += 1;
            }
            Err(e) if e.is_contention() => {
                metrics.db_contention.with_label_values(&["given_up"]).inc();
                return Err(e);
            }
            other => return other,
        }
    }
}

/// A random pause of 5–25 ms times the attempt number, so the losers of a deadlock do not meet again
/// in step.
pub fn contention_pause(tries: u32) -> Duration {
    use rand::Rng;
    let ms = rand::thread_rng().gen_range(5..=25) * u64::from(tries);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::{retry_contended, sqlite_file_path, CONTENTION_ATTEMPTS};
    use crate::error::{AppError, ErrorCode, CONTENTION_RETRY_AFTER_SECONDS};
    use crate::metrics::Metrics;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn contention_is_run_again_then_answered_503_with_retry_after() {
        let m = Metrics::new();
        let calls = AtomicU32::new(0);
        // Loses twice, then goes through.
        let r = retry_contended(&m, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(AppError::contention()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(m.db_contention.with_label_values(&["retried"]).get(), 2);
        // Always loses: run CONTENTION_ATTEMPTS times, then the 503 stands.
        calls.store(0, Ordering::SeqCst);
        let e = retry_contended(&m, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(AppError::contention())
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), CONTENTION_ATTEMPTS);
        assert!(e.is_contention());
        assert_eq!(e.code, ErrorCode::ServiceUnavailable);
        assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(CONTENTION_RETRY_AFTER_SECONDS));
        assert_eq!(m.db_contention.with_label_values(&["given_up"]).get(), 1);
        // Any other error is not run again.
        calls.store(0, Ordering::SeqCst);
        let e = retry_contended(&m, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(AppError::conflict("no"))
        })
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

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
