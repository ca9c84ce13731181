//! The in-process limiter: each process's own budget per client address (GCRA, `governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};

type KeyedLimiter =
    RateLimiter<IpAddr, governor::state::keyed::HashMapStateStore<IpAddr>, DefaultClock>;

pub(super) struct MemoryLimiter {
    limiter: KeyedLimiter,
    clock: DefaultClock,
}

impl MemoryLimiter {
    pub(super) fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        MemoryLimiter {
            limiter: RateLimiter::hashmap(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `ip`'s budget: `Err(wait)` when it is spent.
    pub(super) fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        // Forgotten once their budget is whole again: the map does not grow without bound.
        if self.limiter.len() > 50_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
