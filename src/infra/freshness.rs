//! The catalogue's freshness: a generation number that moves whenever what the catalogue reads
//! return may have changed. The response cache keeps an answer only for the generation it was
//! computed at, so a read that starts after a catalogue write committed never gets an answer
//! computed before it.
//!
//! In this process, every service that writes what catalogue reads return holds a
//! [`WriteGuard`] across its transaction: the generation moves when the guard is taken, and
//! while any guard is held the cache is bypassed (reads go to the database). The proof that this
//! is enough: an answer stored at generation `g` was computed by reads that began after the cache
//! saw no writer in flight, having loaded `g` before that. A write that commits later took its
//! guard after that moment, so it moved the generation past `g` before committing, and a read that
//! starts after the commit loads a later generation and cannot use the answer.
//!
//! Other processes' writes arrive through the database: triggers bump the catalogue version in the
//! writing transaction and, on PostgreSQL, `NOTIFY catalogue_changed` on commit; [`watch`] turns
//! those into [`Freshness::changed`] here (within milliseconds on PostgreSQL, within a second on
//! SQLite, which has no notifications and is polled).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::db::Db;

/// The PostgreSQL channel the catalogue triggers notify on commit.
pub const CHANNEL: &str = "catalogue_changed";

pub struct Freshness {
    generation: AtomicU64,
    writers: AtomicUsize,
    /// The totals of catalogue lists (the COUNT behind a page), each with the generation it was
    /// counted at: a page whose total is known here is one cheap indexed read instead of a read
    /// plus a count of every matching row.
    totals: quick_cache::sync::Cache<String, (u64, u64), TotalWeight>,
}

/// Bounds the totals by their keys' size (a key holds the list's filters, search text included).
#[derive(Clone)]
struct TotalWeight;

impl quick_cache::Weighter<String, (u64, u64)> for TotalWeight {
    fn weight(&self, key: &String, _: &(u64, u64)) -> u64 {
        key.len() as u64 + 64
    }
}

/// Room for the totals: about 4,000 distinct filter combinations of short keys.
const TOTALS_MAX_BYTES: u64 = 256 * 1024;

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            generation: AtomicU64::new(0),
            writers: AtomicUsize::new(0),
            totals: quick_cache::sync::Cache::with_weighter(4096, TOTALS_MAX_BYTES, TotalWeight),
        }
    }
}

impl Freshness {
    /// The generation a read may use cached answers at, or `None` while a catalogue write is in
    /// flight in this process (the read must then go to the database and not store its answer).
    pub fn readable(&self) -> Option<u64> {
        let generation = self.generation.load(SeqCst);
        (self.writers.load(SeqCst) == 0).then_some(generation)
    }

    /// The current generation, for checking that an answer is still worth storing.
    pub fn current(&self) -> u64 {
        self.generation.load(SeqCst)
    }

    /// Marks the start of a write to the catalogue; hold the guard until the transaction has
    /// committed or rolled back.
    pub fn writing(&self) -> WriteGuard<'_> {
        self.writers.fetch_add(1, SeqCst);
        self.generation.fetch_add(1, SeqCst);
        WriteGuard(self)
    }

    /// Another process changed the catalogue (or a notification may have been missed).
    pub fn changed(&self) {
        self.generation.fetch_add(1, SeqCst);
    }

    /// The total of the list `key` describes, if it was counted at `generation` (from
    /// [`Freshness::readable`], taken before the read).
    pub fn total(&self, key: &str, generation: u64) -> Option<u64> {
        self.totals
            .get(key)
            .and_then(|(at, total)| (at == generation).then_some(total))
    }

    /// Keeps a total counted by a read that began at `generation`, unless the catalogue has moved
    /// since (the same rule as the response cache's: see the module doc).
    pub fn remember_total(&self, key: String, generation: u64, total: u64) {
        if self.current() == generation {
            self.totals.insert(key, (generation, total));
        }
    }
}

/// Held by a service across a transaction that writes the catalogue.
#[must_use = "hold the guard until the transaction has committed"]
pub struct WriteGuard<'a>(&'a Freshness);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, SeqCst);
        self.0.writers.fetch_sub(1, SeqCst);
    }
}

/// The catalogue version the database holds (bumped by the triggers in every writing transaction).
pub async fn stored_version(db: &Db) -> Result<i64, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let sql = if backend == DatabaseBackend::Postgres {
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM catalogue_version_seq"
    } else {
        "SELECT version FROM catalogue_versions WHERE id = 1"
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(match row {
        Some(r) => r.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

/// Follows other processes' catalogue writes until the process ends: LISTEN on PostgreSQL (a
/// lost connection also counts as a change, since notifications may have been missed while it
/// was down), polling `catalogue_versions` every `poll` on SQLite.
pub fn watch(db: Db, freshness: Arc<Freshness>, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if db.get_database_backend() == DatabaseBackend::Postgres {
            listen(db, freshness).await
        } else {
            poll_version(db, freshness, poll).await
        }
    })
}

async fn listen(db: Db, freshness: Arc<Freshness>) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = db.get_postgres_connection_pool().clone();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "catalogue listener: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "catalogue listener: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything committed before LISTEN took effect was not notified to us.
        freshness.changed();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => freshness.changed(),
                // The connection was lost and has been re-established: notifications may be lost.
                Ok(None) => freshness.changed(),
                Err(e) => {
                    tracing::warn!(error = %e, "catalogue listener: connection lost; reconnecting");
                    freshness.changed();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

async fn poll_version(db: Db, freshness: Arc<Freshness>, poll: Duration) {
    let mut seen = None;
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match stored_version(&db).await {
            Ok(v) => {
                if seen.is_some_and(|s| s != v) {
                    freshness.changed();
                }
                seen = Some(v);
            }
            Err(e) => {
                tracing::warn!(error = %e, "catalogue version poll failed");
                freshness.changed();
                seen = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Freshness;

    #[test]
    fn a_write_in_flight_bypasses_and_moves_the_generation() {
        let f = Freshness::default();
        let before = f.readable().expect("no writer");
        {
            let _w = f.writing();
            assert_eq!(f.readable(), None);
            assert!(f.current() > before);
        }
        let after = f.readable().expect("writer gone");
        assert!(after > before);
        f.changed();
        assert!(f.readable().expect("no writer") > after);
    }

    #[test]
    fn totals_are_kept_for_their_generation_only() {
        let f = Freshness::default();
        let g = f.readable().expect("no writer");
        f.remember_total("all".into(), g, 7);
        assert_eq!(f.total("all", g), Some(7));
        assert_eq!(f.total("other", g), None);
        // Counted before a write that has since started: not kept.
        let w = f.writing();
        f.remember_total("late".into(), g, 9);
        drop(w);
        let now = f.readable().expect("writer gone");
        assert_eq!(f.total("late", g), None);
        assert_eq!(
            f.total("all", now),
            None,
            "the catalogue moved: the old total is not served"
        );
    }
}
