//! The limiter every replica shares: GCRA in Redis, one Lua script per decision (atomic: no two
//! replicas can both take the last request of a budget), on Redis's clock. A key lives only
//! until its budget is whole again (`PX`), so nothing grows without bound.
//!
//! Redis unreachable: the decision is left to the in-process limiter (`None`), the outage is
//! logged once when it starts and once when it ends, and Redis is tried again at most once a
//! second meanwhile, so a dead Redis costs requests no waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

/// GCRA: `KEYS[1]` the client's key; `ARGV[1]` the emission interval (ms), `ARGV[2]` the burst.
/// Returns 0 when the request is allowed (and records it), else the milliseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed_at = tat + interval - burst * interval
if allowed_at > now then
  return allowed_at - now
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return 0
";

/// The longest a decision may wait for Redis before the process decides alone.
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// How long after a failure the next request tries Redis again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

struct Outage {
    reason: String,
    retry_at: Instant,
}

pub(super) struct SharedLimiter {
    /// Connects on first use and reconnects on its own; `Err` when the URL was refused.
    connection: Result<ConnectionManager, String>,
    script: redis::Script,
    prefix: String,
    /// Milliseconds between requests at the sustained rate.
    interval_ms: u64,
    burst: u32,
    outage: Mutex<Option<Outage>>,
}

impl SharedLimiter {
    pub(super) fn new(url: &SecretString, prefix: &str, per_minute: u32) -> Self {
        let burst = per_minute.max(1);
        SharedLimiter {
            connection: connect_lazily(url),
            script: redis::Script::new(GCRA),
            prefix: prefix.to_string(),
            interval_ms: (60_000 / u64::from(burst)).max(1),
            burst,
            outage: Mutex::new(None),
        }
    }

    /// Takes one request from `who`'s budget in `scope`: `Some(Err(wait))` when it is spent,
    /// `None` when Redis could not decide.
    pub(super) async fn take(
        &self,
        scope: &str,
        who: impl std::fmt::Display,
    ) -> Option<Result<(), Duration>> {
        if self.waiting_to_retry() {
            return None;
        }
        let key = format!("{}ratelimit:{scope}:{who}", self.prefix);
        match tokio::time::timeout(CALL_TIMEOUT, self.decide(&key)).await {
            Ok(Ok(wait_ms)) => {
                self.reachable();
                Some(match u64::try_from(wait_ms) {
                    Ok(ms) if ms > 0 => Err(Duration::from_millis(ms)),
                    _ => Ok(()),
                })
            }
            Ok(Err(e)) => {
                self.unreachable(e);
                None
            }
            Err(_) => {
                self.unreachable(format!("no answer within {} ms", CALL_TIMEOUT.as_millis()));
                None
            }
        }
    }

    /// Why Redis is not deciding now, while it is not.
    pub(super) fn outage(&self) -> Option<String> {
        let outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        outage
            .as_ref()
            .map(|o| format!("redis unreachable: {}", o.reason))
    }

    async fn decide(&self, key: &str) -> Result<i64, String> {
        let mut connection = self.connection.clone()?;
        self.script
            .key(key)
            .arg(self.interval_ms)
            .arg(self.burst)
            .invoke_async::<i64>(&mut connection)
            .await
            .map_err(|e| e.to_string())
    }

    fn waiting_to_retry(&self) -> bool {
        let outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        outage.as_ref().is_some_and(|o| Instant::now() < o.retry_at)
    }

    fn unreachable(&self, reason: String) {
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        if outage.is_none() {
            tracing::warn!(
                reason = %reason,
                "Redis unreachable: the credential routes' rate limits are kept in this process until it is back"
            );
        }
        *outage = Some(Outage {
            reason,
            retry_at: Instant::now() + RETRY_AFTER,
        });
    }

    fn reachable(&self) {
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        if outage.take().is_some() {
            tracing::info!("Redis reachable again: rate limits are shared by every replica");
        }
    }
}

/// A connection manager that connects on its first command, bounded by the call timeout.
fn connect_lazily(url: &SecretString) -> Result<ConnectionManager, String> {
    let client = redis::Client::open(url.expose_secret()).map_err(|e| e.to_string())?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1);
    ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())
}
