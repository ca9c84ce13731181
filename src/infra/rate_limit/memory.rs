//! In-process rate limits for the credential routes (register, login, refresh, password reset and
//! change, email verification), keyed by client IP. Enforced in the services, so REST and GraphQL clients meet the same limit.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};

use crate::error::AppError;

type KeyedLimiter =
    RateLimiter<IpAddr, governor::state::keyed::HashMapStateStore<IpAddr>, DefaultClock>;

pub struct RateLimits {
    auth: KeyedLimiter,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(auth_per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(auth_per_minute).unwrap_or(NonZeroU32::MIN);
        RateLimits {
            auth: RateLimiter::hashmap(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `ip`'s credential-route budget, or answers `rate_limited` with the
    /// seconds to wait.
    pub fn check_auth(&self, ip: IpAddr) -> Result<(), AppError> {
        if self.auth.len() > 50_000 {
            self.auth.retain_recent();
        }
        self.auth.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            AppError::rate_limited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }
}
