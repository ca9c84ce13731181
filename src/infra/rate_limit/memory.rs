//! The in-process limiter: each process's own budget per client address or API key (GCRA,
//! `governor`).

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};

type KeyedLimiter<K> = RateLimiter<K, governor::state::keyed::HashMapStateStore<K>, DefaultClock>;

/// One budget per key: a client address, or an API key's id.
pub(super) struct MemoryLimiter<K: Hash + Eq + Clone> {
    limiter: KeyedLimiter<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> MemoryLimiter<K> {
    pub(super) fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        MemoryLimiter {
            limiter: RateLimiter::hashmap(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `key`'s budget: `Err(wait)` when it is spent.
    pub(super) fn take(&self, key: &K) -> Result<(), Duration> {
        // Forgotten once their budget is whole again: the map does not grow without bound.
        if self.limiter.len() > 50_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
