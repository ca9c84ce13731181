//! The jobs section: whether this process runs background work, with how many workers, and how
//! often the periodic work runs.

use super::reader::Reader;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Whether this process runs background jobs (`JOBS=on|off`, default on; off for a pure API
    /// replica).
    pub enabled: bool,
    /// Job workers in this process (`JOB_WORKERS`, default 2, 0–64).
    pub workers: usize,
    /// How long a claimed job is leased before another worker may take it (`JOB_LEASE_SECONDS`,
    /// default 60; renewed by a heartbeat while it runs).
    pub lease_seconds: i64,
    /// How long an idle worker waits before looking for due jobs again (`JOB_POLL_MILLISECONDS`,
    /// default 1000).
    pub poll_milliseconds: u64,
    /// How often the expiry sweep runs (`SWEEP_INTERVAL_SECONDS`).
    pub sweep_interval_seconds: i64,
    /// How often payments still open are reconciled with their provider
    /// (`RECONCILE_INTERVAL_SECONDS`).
    pub reconcile_interval_seconds: i64,
}

impl JobsConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let workers: usize = r.parse("JOB_WORKERS", 2)?;
        if workers > 64 {
            return Err(ConfigError(format!(
                "JOB_WORKERS must be between 0 and 64 (got {workers})"
            )));
        }
        Ok(JobsConfig {
            enabled: r.switch("JOBS", true)?,
            workers,
            lease_seconds: r.positive("JOB_LEASE_SECONDS", 60)?,
            poll_milliseconds: r.positive("JOB_POLL_MILLISECONDS", 1000)? as u64,
            sweep_interval_seconds: r.positive("SWEEP_INTERVAL_SECONDS", 30)?,
            reconcile_interval_seconds: r.positive("RECONCILE_INTERVAL_SECONDS", 300)?,
        })
    }
}
