//! The HTTP section: where the server listens, who may call it from a browser, which proxies are
//! trusted, the security headers, the response cache and the URLs the outside world sees.

use std::net::SocketAddr;

use ipnet::IpNet;

use super::reader::Reader;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `APP_ADDR` (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// `CORS_ALLOWED_ORIGINS`: origins like `https://shop.example.cl`.
    pub cors_allowed_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: the networks whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// `Strict-Transport-Security: max-age=<this>` on every response; 0 sends none.
    pub hsts_max_age_seconds: u64,
    /// The response cache for catalogue reads (`RESPONSE_CACHE=on|off`, default on).
    pub response_cache: bool,
    /// Its memory bound: bodies and keys, in bytes (least recently used answers go first).
    pub response_cache_max_bytes: u64,
    /// `s-maxage` on anonymous catalogue responses, for a CDN in front; 0 sends none.
    pub cache_s_maxage_seconds: u64,
    /// Where browsers are sent back after paying (`FRONTEND_BASE_URL`).
    pub frontend_base_url: String,
    /// Where payment providers reach this server: webhooks, Webpay's browser return
    /// (`PUBLIC_BASE_URL`).
    pub public_base_url: String,
    /// `SHUTDOWN_GRACE_SECONDS` (default 25): after SIGTERM, how long requests under way and
    /// running jobs have to finish before the process exits anyway.
    pub shutdown_grace_seconds: u64,
    /// `SHUTDOWN_DELAY_SECONDS` (default 3, within the grace): after SIGTERM, how long the
    /// process keeps accepting connections while `/readyz` answers 503, so that the balancer's
    /// health check takes it out before connections are refused.
    pub shutdown_delay_seconds: u64,
}

impl HttpConfig {
    pub(super) fn parse(r: &Reader<'_>, production: bool) -> Result<Self, ConfigError> {
        let cors_allowed_origins = r.list("CORS_ALLOWED_ORIGINS");
        for o in &cors_allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(ConfigError(format!(
                    "CORS_ALLOWED_ORIGINS: {o:?} must be an origin like https://shop.example.cl (scheme, host, optional port, no path)"
                )));
            }
        }
        let shutdown_grace_seconds = r.positive("SHUTDOWN_GRACE_SECONDS", 25)? as u64;
        let shutdown_delay_seconds: u64 = r.parse("SHUTDOWN_DELAY_SECONDS", 3)?;
        if shutdown_delay_seconds >= shutdown_grace_seconds {
            return Err(ConfigError(format!(
                "SHUTDOWN_DELAY_SECONDS ({shutdown_delay_seconds}) must be shorter than SHUTDOWN_GRACE_SECONDS ({shutdown_grace_seconds})"
            )));
        }
        Ok(HttpConfig {
            shutdown_grace_seconds,
            shutdown_delay_seconds,
            addr: r.parse("APP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            cors_allowed_origins,
            trusted_proxies: r.networks("TRUSTED_PROXIES")?,
            // A year is what browsers' HSTS preload lists ask for; outside production the server
            // usually runs on plain http, where the header would be ignored or misleading.
            hsts_max_age_seconds: r.parse(
                "HSTS_MAX_AGE_SECONDS",
                if production { 31_536_000 } else { 0 },
            )?,
            response_cache: r.switch("RESPONSE_CACHE", true)?,
            response_cache_max_bytes: r.positive("RESPONSE_CACHE_MAX_BYTES", 16 * 1024 * 1024)?
                as u64,
            cache_s_maxage_seconds: r.parse("HTTP_CACHE_S_MAXAGE_SECONDS", 0u64)?,
            frontend_base_url: r.base_url("FRONTEND_BASE_URL", "http://localhost:5173"),
            public_base_url: r.base_url("PUBLIC_BASE_URL", "http://localhost:8080"),
        })
    }
}
