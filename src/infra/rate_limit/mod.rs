//! Rate limits for the credential routes (register, login, refresh, password reset and change,
//! email verification), keyed by client IP — enforced in the services, so REST and GraphQL
//! clients meet the same limit —, and each API key's own budget, keyed by the key and taken by
//! the authentication middleware on every request the key makes.
//!
//! With `REDIS_URL` every replica takes from one budget per address, kept in Redis (`shared`);
//! without it, or while Redis cannot be reached, each process keeps its own (`memory`): the
//! credential routes stay usable through a Redis outage, limited per process meanwhile.

mod memory;
mod shared;

use std::net::IpAddr;
use std::time::Duration;

use prometheus::IntCounter;
use serde::Serialize;

use crate::config::Config;
use crate::error::AppError;
use memory::MemoryLimiter;
use shared::SharedLimiter;

pub struct RateLimits {
    memory: MemoryLimiter<IpAddr>,
    shared: Option<SharedLimiter>,
    /// Each API key's own budget (`API_KEY_RATE_LIMIT_PER_MINUTE`), by key id.
    keys_memory: MemoryLimiter<i64>,
    keys_shared: Option<SharedLimiter>,
    /// Decisions taken in process because Redis could not be reached.
    fallbacks: IntCounter,
}

/// Where the limits are kept now, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsStatus {
    /// `redis` (shared by every replica), `memory` (this process's own: no `REDIS_URL`) or
    /// `memory_fallback` (Redis unreachable: this process's own until it is back).
    pub backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RateLimits {
    pub fn new(config: &Config, fallbacks: IntCounter) -> Self {
        RateLimits {
            memory: MemoryLimiter::new(config.auth.rate_limit_per_minute),
            shared: config.redis.url.as_ref().map(|url| {
                SharedLimiter::new(
                    url,
                    &config.redis.key_prefix,
                    config.auth.rate_limit_per_minute,
                )
            }),
            keys_memory: MemoryLimiter::new(config.auth.api_key_rate_limit_per_minute),
            keys_shared: config.redis.url.as_ref().map(|url| {
                SharedLimiter::new(
                    url,
                    &config.redis.key_prefix,
                    config.auth.api_key_rate_limit_per_minute,
                )
            }),
            fallbacks,
        }
    }

    /// Takes one request from `ip`'s credential-route budget, or answers `rate_limited` with the
    /// seconds to wait.
    pub async fn check_auth(&self, ip: IpAddr) -> Result<(), AppError> {
        let decision = match &self.shared {
            None => self.memory.take(&ip),
            Some(shared) => match shared.take("auth", ip).await {
                Some(decision) => decision,
                None => {
                    self.fallbacks.inc();
                    self.memory.take(&ip)
                }
            },
        };
        decision.map_err(|wait| AppError::rate_limited(whole_seconds(wait)))
    }

    /// Takes one request from API key `id`'s budget, or answers `rate_limited`.
    pub async fn check_api_key(&self, id: i64) -> Result<(), AppError> {
        let decision = match &self.keys_shared {
            None => self.keys_memory.take(&id),
            Some(shared) => match shared.take("apikey", id).await {
                Some(decision) => decision,
                None => {
                    self.fallbacks.inc();
                    self.keys_memory.take(&id)
                }
            },
        };
        decision.map_err(|wait| AppError::rate_limited(whole_seconds(wait)))
    }

    pub fn status(&self) -> LimitsStatus {
        match &self.shared {
            None => LimitsStatus {
                backend: "memory",
                reason: None,
            },
            Some(shared) => match shared.outage() {
                None => LimitsStatus {
                    backend: "redis",
                    reason: None,
                },
                Some(reason) => LimitsStatus {
                    backend: "memory_fallback",
                    reason: Some(reason),
                },
            },
        }
    }
}

/// A wait in whole seconds, rounded up (a `Retry-After` of 0 would invite an immediate retry).
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
