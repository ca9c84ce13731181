//! What the replicas share besides the database: Redis, where the limits every replica shares live (`REDIS_URL`, optional; without
//! it each process keeps its own).

use secrecy::SecretString;

use super::reader::Reader;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL` (`redis://[user:password@]host:port[/db]`): a secret, since it may carry a
    /// password.
    pub url: Option<SecretString>,
    /// `REDIS_KEY_PREFIX` (default `dispensary:`): every key this server writes starts with it,
    /// so several stores (or test runs) can share one Redis.
    pub key_prefix: String,
}

impl RedisConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let url = match r.raw("REDIS_URL") {
            None => None,
            Some(raw) => {
                let scheme = url::Url::parse(&raw)
                    .map(|u| u.scheme().to_string())
                    .map_err(|_| {
                        ConfigError("REDIS_URL is not a URL (redis://host:6379)".into())
                    })?;
                match scheme.as_str() {
                    "redis" => Some(SecretString::from(raw)),
                    "rediss" => {
                        return Err(ConfigError(
                            "REDIS_URL: rediss:// (TLS) is not supported by this build; reach Redis on a private network (redis://)".into(),
                        ))
                    }
                    other => {
                        return Err(ConfigError(format!(
                            "REDIS_URL: scheme must be redis, not {other:?}"
                        )))
                    }
                }
            }
        };
        let key_prefix = r.text("REDIS_KEY_PREFIX", "dispensary:");
        if key_prefix.len() > 64
            || key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError(
                "REDIS_KEY_PREFIX must be at most 64 characters without spaces".into(),
            ));
        }
        Ok(RedisConfig { url, key_prefix })
    }
}
