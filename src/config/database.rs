//! The database section: `DATABASE_URL`, the pool and its sessions, migrations at start-up.

use super::reader::Reader;
use super::ConfigError;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/dispensary.db?mode=rwc";

/// PostgreSQL's `plan_cache_mode` for the server's connections (`DATABASE_PLAN_CACHE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanCacheMode {
    /// Prepared statements are planned once per connection (the default): the server's
    /// statements are indexed lookups whose best plan does not depend on their values, and
    /// planning a catalogue page again on every execution cost 2–4× executing it.
    Generic,
    /// PostgreSQL's own default: value-specific plans, switching to a generic one when it judges
    /// it no worse.
    Auto,
}

impl PlanCacheMode {
    /// The setting's PostgreSQL value.
    pub fn as_postgres(self) -> &'static str {
        match self {
            PlanCacheMode::Generic => "force_generic_plan",
            PlanCacheMode::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` (default: the embedded SQLite file under `data/`).
    pub url: DatabaseUrl,
    /// `DATABASE_MAX_CONNECTIONS` (default 10, at least 1).
    pub max_connections: u32,
    /// `DATABASE_PLAN_CACHE_MODE` (`generic`, the default, or `auto`).
    pub plan_cache_mode: PlanCacheMode,
    /// `AUTO_MIGRATE` (default true): apply pending migrations at start-up.
    pub auto_migrate: bool,
}

impl DatabaseConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let max_connections = r.parse("DATABASE_MAX_CONNECTIONS", 10u32)?;
        if max_connections == 0 {
            return Err(ConfigError(
                "DATABASE_MAX_CONNECTIONS must be at least 1".into(),
            ));
        }
        Ok(DatabaseConfig {
            url: DatabaseUrl(r.text("DATABASE_URL", DEFAULT_DATABASE_URL)),
            max_connections,
            plan_cache_mode: r.one_of(
                "DATABASE_PLAN_CACHE_MODE",
                PlanCacheMode::Generic,
                &[
                    ("generic", PlanCacheMode::Generic),
                    ("auto", PlanCacheMode::Auto),
                ],
            )?,
            auto_migrate: r.parse("AUTO_MIGRATE", true)?,
        })
    }
}

/// `DATABASE_URL`: read as the string it is, shown (`Debug`) without the password it may carry.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for DatabaseUrl {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_ref()
    }
}

impl AsRef<str> for DatabaseUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("<redacted>"));
                write!(f, "{:?}", u.as_str())
            }
            Ok(_) => write!(f, "{:?}", self.0),
            Err(_) => f.write_str("\"<unparsable, redacted>\""),
        }
    }
}
