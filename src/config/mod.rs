//! Typed configuration from the environment (and `.env` when present, loaded by `main`).
//!
//! Every variable is parsed here, once, at start-up: a malformed value is an error that names the
//! variable, and production refuses weak secrets.

pub mod mail;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;

use ipnet::IpNet;
pub use secrecy::{ExposeSecret, SecretString};

use crate::entities::payment::Provider;

/// How medicinal products appear to viewers without access (`MEDICINAL_CATALOG_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogMode {
    /// Absent from lists and counts; `not_found` by id.
    Hidden,
    /// Listed to everyone, without variants, prices or stock, flagged `requiresMedicinalValidation`.
    Teaser,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/dispensary.db?mode=rwc";
pub const DEFAULT_SEED_ADMIN_EMAIL: &str = "admin@dispensario.local";
/// Documented development default; refused when `APP_ENV=production`.
pub const DEFAULT_SEED_ADMIN_PASSWORD: &str = "Admin12345!";
/// Development-only signing key, used when `JWT_SECRET` is unset outside production.
const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret-change-me-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

/// Who may run GraphQL introspection (`__schema`, `__type`); `__typename` is always allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    Public,
    /// Admins keep a working GraphiQL; everyone else is refused.
    Admin,
    Off,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub database_plan_cache_mode: PlanCacheMode,
    pub app_addr: SocketAddr,
    pub app_env: AppEnv,
    pub jwt_secret: SecretString,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    pub cors_allowed_origins: Vec<String>,
    pub auth_rate_limit_per_minute: u32,
    pub login_failure_limit: u32,
    pub login_failure_window_seconds: i64,
    pub trusted_proxies: Vec<IpNet>,
    pub log_format: LogFormat,
    pub seed_admin_email: String,
    pub seed_admin_password: SecretString,
    pub auto_migrate: bool,
    pub graphql_max_depth: usize,
    pub graphql_max_complexity: usize,
    /// Aliased fields one document may hold (fragments counted where they are spread).
    pub graphql_max_aliases: usize,
    pub graphql_introspection: Introspection,
    /// `Strict-Transport-Security: max-age=<this>` on every response; 0 sends none.
    pub hsts_max_age_seconds: u64,
    /// The response cache for catalogue reads (`RESPONSE_CACHE=on|off`, default on).
    pub response_cache: bool,
    /// Its memory bound: bodies and keys, in bytes (least recently used answers go first).
    pub response_cache_max_bytes: u64,
    /// `s-maxage` on anonymous catalogue responses, for a CDN in front; 0 sends none.
    pub http_cache_s_maxage_seconds: u64,
    /// The bound of the automatic persisted queries store, in bytes of query text.
    pub persisted_queries_max_bytes: u64,
    /// Argon2id cost (memory KiB, iterations). Defaults follow OWASP's argon2id minimum; tests lower it.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub medicinal_catalog_mode: CatalogMode,
    /// Where uploaded files are stored (public images under `public/`, private documents elsewhere).
    pub upload_dir: std::path::PathBuf,
    /// How long a checkout holds its stock (seconds).
    pub reservation_ttl_seconds: i64,
    /// Pending orders older than this become `failed` (seconds).
    pub payment_timeout_seconds: i64,
    /// How often the expiry sweep runs (seconds).
    pub sweep_interval_seconds: i64,
    /// How often payments still open are reconciled with their provider (seconds).
    pub reconcile_interval_seconds: i64,
    /// Whether this process runs background jobs (`JOBS=on|off`, default on; off for a pure API
    /// replica).
    pub jobs_enabled: bool,
    /// Job workers in this process (`JOB_WORKERS`, default 2, 0–64).
    pub job_workers: usize,
    /// How long a claimed job is leased before another worker may take it (`JOB_LEASE_SECONDS`,
    /// default 60; renewed by a heartbeat while it runs).
    pub job_lease_seconds: i64,
    /// How long an idle worker waits before looking for due jobs again (`JOB_POLL_MILLISECONDS`,
    /// default 1000).
    pub job_poll_milliseconds: u64,
    /// `SMTP_URL`: where mail goes; `None` writes `.eml` files under `mail_dir`.
    pub smtp: Option<mail::SmtpSettings>,
    /// `EMAIL_FROM`: the sender of every message (`Name <address>`).
    pub email_from: String,
    /// `MAIL_DIR`: where messages are written without `SMTP_URL`.
    pub mail_dir: std::path::PathBuf,
    /// `REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT` (default false): checkout confirmation refuses users
    /// whose address is not verified (403 `email_not_verified`).
    pub require_verified_email_for_checkout: bool,
    /// `URL_SIGNING_KEY` (optional, at least 32 bytes): the key of signed download URLs; unset,
    /// one is derived from `JWT_SECRET` (HKDF), so the token key never signs URLs itself.
    pub url_signing_key: Option<SecretString>,
    /// `DATA_ENCRYPTION_KEY`: seals TOTP secrets at rest. Required in production; elsewhere the
    /// documented [`DEV_DATA_ENCRYPTION_KEY`].
    pub data_encryption_key: KeyBytes,
    /// `ADMIN_REQUIRE_2FA` (default true in production, false elsewhere): admin operations answer
    /// 403 `mfa_required` to an admin without two-factor authentication.
    pub admin_require_2fa: bool,
    /// `PRIVACY_POLICY_VERSION` (default `2026-12-01`): the privacy policy in force. Registration
    /// records it; a customer who accepted an older one is asked to accept again.
    pub privacy_policy_version: String,
    /// `PRIVACY_REQUEST_DUE_DAYS` (default 30): how long the store has to answer a personal-data
    /// request (export, erasure) under Ley 21.719.
    pub privacy_request_due_days: i64,
    /// `ERASURE_GRACE_DAYS` (default 7): how long after asking a customer may cancel the erasure
    /// of their account before it runs.
    pub erasure_grace_days: i64,
    /// `LEGAL_RETENTION_YEARS` (default 6): how long orders, payments and receipts are kept for
    /// the tax law, under a pseudonym once their customer is erased.
    pub legal_retention_years: i64,
    /// `MEDICINAL_DOC_RETENTION_DAYS` (default 365): how long a prescription or certificate is
    /// kept (row and file) after it expired or was rejected.
    pub medicinal_doc_retention_days: i64,
    /// Where browsers are sent back after paying.
    pub frontend_base_url: String,
    /// The store's name as printed on receipts.
    pub store_name: String,
    /// HMAC key of the `test` payment provider's webhooks.
    pub test_payment_secret: SecretString,
    /// The `test` provider works outside production, and in production only when enabled.
    pub payments_test_enabled: bool,
    /// Where payment providers reach this server (webhooks, Webpay's browser return).
    pub public_base_url: String,
    /// Per provider, the networks its notifications may come from (`<P>_WEBHOOK_ALLOWED_IPS`);
    /// absent: any. The client address honours `X-Forwarded-For` only from `TRUSTED_PROXIES`.
    pub webhook_allowed_ips: HashMap<Provider, Vec<IpNet>>,
    /// Timeout of each call to a payment provider (seconds).
    pub provider_timeout_seconds: i64,
    /// Webpay Plus; `None` when disabled (production without explicit credentials).
    pub webpay: Option<WebpayConfig>,
    /// Flow; `None` without `FLOW_API_KEY` and `FLOW_SECRET_KEY`.
    pub flow: Option<FlowConfig>,
    /// Mercado Pago; `None` without `MP_ACCESS_TOKEN` and `MP_WEBHOOK_SECRET`.
    pub mp: Option<MpConfig>,
}

/// Mercado Pago Checkout Pro (providers.md §3).
#[derive(Debug, Clone)]
pub struct MpConfig {
    pub base_url: String,
    pub access_token: SecretString,
    pub webhook_secret: SecretString,
}

/// Flow (providers.md §2).
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub base_url: String,
    pub api_key: String,
    pub secret_key: SecretString,
}

/// Webpay Plus (providers.md §1).
#[derive(Debug, Clone)]
pub struct WebpayConfig {
    pub base_url: String,
    /// The API path prefix, version included.
    pub api_prefix: String,
    pub commerce_code: String,
    pub api_key_secret: SecretString,
}

/// Transbank's public integration commerce code and secret (safe to ship as development defaults).
pub const WEBPAY_INTEGRATION_CODE: &str = "597055555532";
pub const WEBPAY_INTEGRATION_SECRET: &str =
    "579B532A7440BB0C9079DED94D31EA1615BACEB56610332264630D42D0A36B1C";

/// `DATA_ENCRYPTION_KEY` when unset outside production: documented, so never a secret, and
/// refused in production.
pub const DEV_DATA_ENCRYPTION_KEY: &str = "ZGV2LW9ubHktZGF0YS1rZXktbm90LWEtc2VjcmV0ISE=";

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

/// 32 key bytes (`DATA_ENCRYPTION_KEY`); `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBytes(pub [u8; 32]);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

impl KeyBytes {
    /// Base64 (standard or URL-safe alphabet, padding optional) of exactly 32 bytes, as
    /// `openssl rand -base64 32` prints.
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine;
        let text = text.trim().trim_end_matches('=');
        let bytes = [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or("is not base64")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("must decode to 32 bytes (got {})", b.len()))?;
        Ok(KeyBytes(key))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars)
    }

    /// Reads configuration from a map of variables (the environment, or a test's own).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let r = Reader { vars };
        let app_env = match r.raw("APP_ENV").as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("test") => AppEnv::Test,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError(format!(
                    "APP_ENV must be one of development, test, production (got {other:?})"
                )))
            }
        };
        let database_plan_cache_mode = match r.raw("DATABASE_PLAN_CACHE_MODE").as_deref() {
            None | Some("generic") => PlanCacheMode::Generic,
            Some("auto") => PlanCacheMode::Auto,
            Some(other) => {
                return Err(ConfigError(format!(
                    "DATABASE_PLAN_CACHE_MODE must be generic or auto (got {other:?})"
                )))
            }
        };
        let log_format = match r.raw("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError(format!(
                    "LOG_FORMAT must be json or pretty (got {other:?})"
                )))
            }
        };
        let production = app_env == AppEnv::Production;
        let graphql_introspection = match r.raw("GRAPHQL_INTROSPECTION").as_deref() {
            None if production => Introspection::Admin,
            None => Introspection::Public,
            Some("public") => Introspection::Public,
            Some("admin") => Introspection::Admin,
            Some("off") => Introspection::Off,
            Some(other) => {
                return Err(ConfigError(format!(
                    "GRAPHQL_INTROSPECTION must be public, admin or off (got {other:?})"
                )))
            }
        };

        let jwt_secret = match r.raw("JWT_SECRET") {
            Some(s) if s.len() >= 32 => s,
            Some(_) if production => {
                return Err(ConfigError(
                    "JWT_SECRET must be at least 32 bytes in production".into(),
                ))
            }
            None if production => {
                return Err(ConfigError(
                    "JWT_SECRET is required in production (at least 32 bytes)".into(),
                ))
            }
            Some(s) => {
                tracing::warn!(
                    "JWT_SECRET is shorter than 32 bytes; acceptable only outside production"
                );
                s
            }
            None => DEV_JWT_SECRET.to_string(),
        };
        if jwt_secret.is_empty() {
            return Err(ConfigError("JWT_SECRET must not be empty".into()));
        }

        let seed_admin_password = r
            .raw("SEED_ADMIN_PASSWORD")
            .unwrap_or_else(|| DEFAULT_SEED_ADMIN_PASSWORD.to_string());
        if production && seed_admin_password == DEFAULT_SEED_ADMIN_PASSWORD {
            return Err(ConfigError(
                "SEED_ADMIN_PASSWORD must be set to a non-default value in production".into(),
            ));
        }
        let url_signing_key = match r.raw("URL_SIGNING_KEY") {
            Some(k) if k.len() >= 32 => Some(SecretString::from(k)),
            Some(_) if production => {
                return Err(ConfigError(
                    "URL_SIGNING_KEY must be at least 32 bytes in production".into(),
                ))
            }
            Some(k) if !k.is_empty() => {
                tracing::warn!(
                    "URL_SIGNING_KEY is shorter than 32 bytes; acceptable only outside production"
                );
                Some(SecretString::from(k))
            }
            _ => None,
        };
        let data_encryption_key = match r.raw("DATA_ENCRYPTION_KEY") {
            None if production => {
                return Err(ConfigError(
                    "DATA_ENCRYPTION_KEY is required in production (base64 of 32 random bytes: `openssl rand -base64 32`)".into(),
                ))
            }
            Some(k) if production && k.trim() == DEV_DATA_ENCRYPTION_KEY => {
                return Err(ConfigError(
                    "DATA_ENCRYPTION_KEY must not be the documented development key in production"
                        .into(),
                ))
            }
            None => DEV_DATA_ENCRYPTION_KEY.to_string(),
            Some(k) => k,
        };
        let data_encryption_key = KeyBytes::parse(&data_encryption_key)
            .map_err(|e| ConfigError(format!("DATA_ENCRYPTION_KEY {e}")))?;
        if let Err(e) = crate::domain::Password::parse(&seed_admin_password) {
            return Err(ConfigError(format!(
                "SEED_ADMIN_PASSWORD does not meet the password policy: {}",
                e.message
            )));
        }
        let seed_admin_email = r
            .raw("SEED_ADMIN_EMAIL")
            .unwrap_or_else(|| DEFAULT_SEED_ADMIN_EMAIL.to_string());
        let seed_admin_email = crate::domain::Email::parse(&seed_admin_email)
            .map_err(|_| {
                ConfigError(format!(
                    "SEED_ADMIN_EMAIL is not a valid email: {seed_admin_email:?}"
                ))
            })?
            .into_inner();

        let networks = |var: &str| {
            r.list(var)
                .into_iter()
                .map(|s| {
                    IpNet::from_str(&s)
                        .or_else(|_| std::net::IpAddr::from_str(&s).map(IpNet::from))
                        .map_err(|_| {
                            ConfigError(format!("{var}: {s:?} is not an IP address or CIDR range"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let trusted_proxies = networks("TRUSTED_PROXIES")?;
        let mut webhook_allowed_ips = std::collections::HashMap::new();
        for provider in [Provider::Test, Provider::Flow, Provider::Mp] {
            let var = format!("{}_WEBHOOK_ALLOWED_IPS", provider.as_str().to_uppercase());
            let nets = networks(&var)?;
            if !nets.is_empty() {
                webhook_allowed_ips.insert(provider, nets);
            }
        }

        let cors_allowed_origins = r.list("CORS_ALLOWED_ORIGINS");
        for o in &cors_allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(ConfigError(format!(
                    "CORS_ALLOWED_ORIGINS: {o:?} must be an origin like https://shop.example.cl (scheme, host, optional port, no path)"
                )));
            }
        }

        let medicinal_catalog_mode = match r.raw("MEDICINAL_CATALOG_MODE").as_deref() {
            None | Some("hidden") => CatalogMode::Hidden,
            Some("teaser") => CatalogMode::Teaser,
            Some(other) => {
                return Err(ConfigError(format!(
                    "MEDICINAL_CATALOG_MODE must be hidden or teaser (got {other:?})"
                )))
            }
        };

        let response_cache = match r.raw("RESPONSE_CACHE").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError(format!(
                    "RESPONSE_CACHE must be on or off (got {other:?})"
                )))
            }
        };

        let jobs_enabled = match r.raw("JOBS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError(format!(
                    "JOBS must be on or off (got {other:?})"
                )))
            }
        };
        let job_workers: usize = r.parse("JOB_WORKERS", 2)?;
        if job_workers > 64 {
            return Err(ConfigError(format!(
                "JOB_WORKERS must be between 0 and 64 (got {job_workers})"
            )));
        }

        let cfg = Config {
            database_url: DatabaseUrl(
                r.raw("DATABASE_URL")
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
            ),
            database_max_connections: r.parse("DATABASE_MAX_CONNECTIONS", 10u32)?,
            database_plan_cache_mode,
            app_addr: r.parse("APP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            app_env,
            jwt_secret: jwt_secret.into(),
            url_signing_key,
            jwt_issuer: r.raw("JWT_ISSUER").unwrap_or_else(|| "dispensary".into()),
            jwt_audience: r
                .raw("JWT_AUDIENCE")
                .unwrap_or_else(|| "dispensary-api".into()),
            access_token_ttl_seconds: r.positive("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_seconds: r.positive("REFRESH_TOKEN_TTL_SECONDS", 2_592_000)?,
            cors_allowed_origins,
            auth_rate_limit_per_minute: r.positive("AUTH_RATE_LIMIT_PER_MINUTE", 60)? as u32,
            login_failure_limit: r.positive("LOGIN_FAILURE_LIMIT", 10)? as u32,
            login_failure_window_seconds: r.positive("LOGIN_FAILURE_WINDOW_SECONDS", 900)?,
            trusted_proxies,
            log_format,
            seed_admin_email,
            seed_admin_password: seed_admin_password.into(),
            auto_migrate: r.parse("AUTO_MIGRATE", true)?,
            graphql_max_depth: r.positive("GRAPHQL_MAX_DEPTH", 12)? as usize,
            graphql_max_complexity: r.positive("GRAPHQL_MAX_COMPLEXITY", 25_000)? as usize,
            graphql_max_aliases: r.positive("GRAPHQL_MAX_ALIASES", 30)? as usize,
            graphql_introspection,
            // A year is what browsers' HSTS preload lists ask for; outside production the server
            // usually runs on plain http, where the header would be ignored or misleading.
            hsts_max_age_seconds: r.parse(
                "HSTS_MAX_AGE_SECONDS",
                if production { 31_536_000 } else { 0 },
            )?,
            response_cache,
            response_cache_max_bytes: r.positive("RESPONSE_CACHE_MAX_BYTES", 16 * 1024 * 1024)?
                as u64,
            http_cache_s_maxage_seconds: r.parse("HTTP_CACHE_S_MAXAGE_SECONDS", 0u64)?,
            persisted_queries_max_bytes: r
                .positive("PERSISTED_QUERIES_MAX_BYTES", 4 * 1024 * 1024)?
                as u64,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            medicinal_catalog_mode,
            upload_dir: r
                .raw("UPLOAD_DIR")
                .unwrap_or_else(|| "data/uploads".into())
                .into(),
            frontend_base_url: r
                .raw("FRONTEND_BASE_URL")
                .unwrap_or_else(|| "http://localhost:5173".into())
                .trim_end_matches('/')
                .to_string(),
            store_name: r
                .raw("STORE_NAME")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "Dispensario".into()),
            test_payment_secret: r
                .raw("TEST_PAYMENT_SECRET")
                .unwrap_or_else(|| "dev-test-payment-secret".into())
                .into(),
            require_verified_email_for_checkout: r
                .parse("REQUIRE_VERIFIED_EMAIL_FOR_CHECKOUT", false)?,
            data_encryption_key,
            admin_require_2fa: r.parse("ADMIN_REQUIRE_2FA", production)?,
            privacy_policy_version: privacy_policy_version(&r)?,
            privacy_request_due_days: r.positive("PRIVACY_REQUEST_DUE_DAYS", 30)?,
            erasure_grace_days: r.positive("ERASURE_GRACE_DAYS", 7)?,
            legal_retention_years: r.positive("LEGAL_RETENTION_YEARS", 6)?,
            medicinal_doc_retention_days: r.positive("MEDICINAL_DOC_RETENTION_DAYS", 365)?,
            payments_test_enabled: !production || r.parse("PAYMENTS_TEST_ENABLED", false)?,
            webhook_allowed_ips,
            provider_timeout_seconds: r.positive("PROVIDER_TIMEOUT_SECONDS", 15)?,
            public_base_url: r
                .raw("PUBLIC_BASE_URL")
                .unwrap_or_else(|| "http://localhost:8080".into())
                .trim_end_matches('/')
                .to_string(),
            mp: match (r.raw("MP_ACCESS_TOKEN"), r.raw("MP_WEBHOOK_SECRET")) {
                (Some(access_token), Some(webhook_secret)) => Some(MpConfig {
                    base_url: r
                        .raw("MP_BASE_URL")
                        .unwrap_or_else(|| "https://api.mercadopago.com".into())
                        .trim_end_matches('/')
                        .to_string(),
                    access_token: access_token.into(),
                    webhook_secret: webhook_secret.into(),
                }),
                _ => None,
            },
            flow: match (r.raw("FLOW_API_KEY"), r.raw("FLOW_SECRET_KEY")) {
                (Some(api_key), Some(secret_key)) => Some(FlowConfig {
                    base_url: r
                        .raw("FLOW_BASE_URL")
                        .unwrap_or_else(|| "https://sandbox.flow.cl/api".into())
                        .trim_end_matches('/')
                        .to_string(),
                    api_key,
                    secret_key: secret_key.into(),
                }),
                _ => None,
            },
            webpay: {
                let code = r.raw("WEBPAY_COMMERCE_CODE");
                let secret = r.raw("WEBPAY_API_KEY_SECRET");
                // Production never falls back to the public integration credentials.
                if production && (code.is_none() || secret.is_none()) {
                    None
                } else {
                    Some(WebpayConfig {
                        base_url: r
                            .raw("WEBPAY_BASE_URL")
                            .unwrap_or_else(|| "https://webpay3gint.transbank.cl".into())
                            .trim_end_matches('/')
                            .to_string(),
                        api_prefix: r
                            .raw("WEBPAY_API_PREFIX")
                            .unwrap_or_else(|| "/rswebpaytransaction/api/webpay/v1.2".into())
                            .trim_end_matches('/')
                            .to_string(),
                        commerce_code: code.unwrap_or_else(|| WEBPAY_INTEGRATION_CODE.into()),
                        api_key_secret: secret
                            .unwrap_or_else(|| WEBPAY_INTEGRATION_SECRET.into())
                            .into(),
                    })
                }
            },
            payment_timeout_seconds: r.positive("PAYMENT_TIMEOUT_SECONDS", 1800)?,
            sweep_interval_seconds: r.positive("SWEEP_INTERVAL_SECONDS", 30)?,
            reconcile_interval_seconds: r.positive("RECONCILE_INTERVAL_SECONDS", 300)?,
            jobs_enabled,
            job_workers,
            job_lease_seconds: r.positive("JOB_LEASE_SECONDS", 60)?,
            job_poll_milliseconds: r.positive("JOB_POLL_MILLISECONDS", 1000)? as u64,
            smtp: r
                .raw("SMTP_URL")
                .filter(|u| !u.trim().is_empty())
                .map(|u| mail::SmtpSettings::parse(&u))
                .transpose()
                .map_err(ConfigError)?,
            email_from: {
                let from = r
                    .raw("EMAIL_FROM")
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "Dispensario <no-reply@dispensario.local>".into());
                from.parse::<lettre::message::Mailbox>().map_err(|e| {
                    ConfigError(format!(
                        "EMAIL_FROM must be an address or \"Name <address>\" (got {from:?}: {e})"
                    ))
                })?;
                from
            },
            mail_dir: r
                .raw("MAIL_DIR")
                .unwrap_or_else(|| "data/mail".into())
                .into(),
            reservation_ttl_seconds: r.positive("RESERVATION_TTL_SECONDS", 900)?,
        };
        if cfg.database_max_connections == 0 {
            return Err(ConfigError(
                "DATABASE_MAX_CONNECTIONS must be at least 1".into(),
            ));
        }
        Ok(cfg)
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

/// The default `PRIVACY_POLICY_VERSION`: the policy published when Ley 21.719 came into force.
pub const DEFAULT_PRIVACY_POLICY_VERSION: &str = "2026-12-01";

fn privacy_policy_version(r: &Reader<'_>) -> Result<String, ConfigError> {
    let v = r
        .raw("PRIVACY_POLICY_VERSION")
        .unwrap_or_else(|| DEFAULT_PRIVACY_POLICY_VERSION.into());
    let ok = v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !ok {
        return Err(ConfigError(format!(
            "PRIVACY_POLICY_VERSION must be at most 32 letters, digits, '-', '.' or '_': {v:?}"
        )));
    }
    Ok(v)
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
}

impl Reader<'_> {
    /// The trimmed value; empty counts as unset.
    fn raw(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.raw(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError(format!("{name} has an invalid value: {v:?}"))),
        }
    }

    fn positive(&self, name: &str, default: i64) -> Result<i64, ConfigError> {
        let v: i64 = self.parse(name, default)?;
        if v <= 0 || v > i64::from(u32::MAX) {
            return Err(ConfigError(format!(
                "{name} must be a positive whole number (got {v})"
            )));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A production environment that passes the secret checks (`strong`: ≥ 32 bytes).
    fn production(strong: &str) -> Vec<(&'static str, &str)> {
        vec![
            ("APP_ENV", "production"),
            ("JWT_SECRET", strong),
            ("SEED_ADMIN_PASSWORD", "Str0ngPassw0rd"),
            ("DATA_ENCRYPTION_KEY", PROD_DATA_KEY),
        ]
    }

    /// Base64 of 32 bytes that are not the development key.
    const PROD_DATA_KEY: &str = "cHJvZHVjdGlvbi1kYXRhLWtleS0zMi1ieXRlcyEhISE=";

    #[test]
    fn formatting_the_config_shows_no_secret() {
        let secrets = [
            ("JWT_SECRET", "jwt-Secret-Value-0123456789abcdefghij"),
            ("SEED_ADMIN_PASSWORD", "Seed-Admin-Passw0rd-xyz"),
            ("TEST_PAYMENT_SECRET", "test-payment-secret-qwerty"),
            ("MP_ACCESS_TOKEN", "APP_USR-mp-access-token-5555"),
            ("MP_WEBHOOK_SECRET", "mp-webhook-secret-6666"),
            ("FLOW_SECRET_KEY", "flow-secret-key-7777"),
            ("WEBPAY_API_KEY_SECRET", "webpay-api-key-secret-8888"),
        ];
        let mut vars = secrets.to_vec();
        vars.extend([
            ("APP_ENV", "production"),
            ("DATA_ENCRYPTION_KEY", PROD_DATA_KEY),
            (
                "DATABASE_URL",
                "postgres://shop:db-Passw0rd-9999@db.internal:5432/shop",
            ),
            (
                "SMTP_URL",
                "smtp://mailer:smtp-Passw0rd-4444@mail.internal:587",
            ),
            ("FLOW_API_KEY", "flow-api-key"),
            ("WEBPAY_COMMERCE_CODE", "597055555532"),
        ]);
        let c = Config::from_map(&map(&vars)).unwrap();
        assert!(c.mp.is_some() && c.flow.is_some() && c.webpay.is_some() && c.smtp.is_some());
        let shown = format!("{c:?} {c:#?}");
        for (name, secret) in secrets.iter().chain(&[
            ("DATABASE_URL", "db-Passw0rd-9999"),
            ("SMTP_URL", "smtp-Passw0rd-4444"),
        ]) {
            assert!(!shown.contains(secret), "{name} shown in {shown}");
        }
        assert!(!shown.contains(PROD_DATA_KEY));
        // What is not secret is still shown, so the check above is not vacuous.
        assert!(shown.contains("db.internal"), "{shown}");
        assert!(shown.contains("flow-api-key"), "{shown}");
        // The values themselves are intact behind the wrapper.
        assert_eq!(c.jwt_secret.expose_secret(), secrets[0].1);
        assert_eq!(
            c.database_url,
            "postgres://shop:db-Passw0rd-9999@db.internal:5432/shop"
        );
    }

    #[test]
    fn production_requires_a_data_encryption_key_and_admin_2fa_by_default() {
        let strong = "x".repeat(32);
        let mut prod = production(&strong);
        let ok = Config::from_map(&map(&prod)).unwrap();
        assert!(ok.admin_require_2fa);
        assert_ne!(
            ok.data_encryption_key,
            KeyBytes::parse(DEV_DATA_ENCRYPTION_KEY).unwrap()
        );
        assert!(!format!("{ok:?}").contains(&format!("{:?}", ok.data_encryption_key.0)));
        prod.retain(|(k, _)| *k != "DATA_ENCRYPTION_KEY");
        let e = Config::from_map(&map(&prod)).unwrap_err();
        assert!(e.0.contains("DATA_ENCRYPTION_KEY is required"), "{e}");
        prod.push(("DATA_ENCRYPTION_KEY", DEV_DATA_ENCRYPTION_KEY));
        let e = Config::from_map(&map(&prod)).unwrap_err();
        assert!(e.0.contains("development key"), "{e}");
        prod.pop();
        prod.push(("DATA_ENCRYPTION_KEY", "c2hvcnQ="));
        let e = Config::from_map(&map(&prod)).unwrap_err();
        assert!(e.0.contains("32 bytes (got 5)"), "{e}");
        prod.pop();
        prod.push(("DATA_ENCRYPTION_KEY", PROD_DATA_KEY));
        prod.push(("ADMIN_REQUIRE_2FA", "false"));
        assert!(!Config::from_map(&map(&prod)).unwrap().admin_require_2fa);

        let dev = Config::from_map(&map(&[])).unwrap();
        assert!(!dev.admin_require_2fa);
        assert_eq!(
            dev.data_encryption_key,
            KeyBytes::parse(DEV_DATA_ENCRYPTION_KEY).unwrap()
        );
        assert!(KeyBytes::parse(PROD_DATA_KEY.trim_end_matches('=')).is_ok());
        assert!(KeyBytes::parse("not base64 at all!").is_err());
    }

    #[test]
    fn defaults_outside_production() {
        let c = Config::from_map(&map(&[])).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.app_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.access_token_ttl_seconds, 900);
        assert_eq!(c.refresh_token_ttl_seconds, 2_592_000);
        assert_eq!(c.auth_rate_limit_per_minute, 60);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.auto_migrate);
        assert_eq!(c.graphql_introspection, Introspection::Public);
        assert_eq!(c.database_plan_cache_mode, PlanCacheMode::Generic);
    }

    #[test]
    fn jobs_are_on_with_two_workers_unless_configured() {
        let c = Config::from_map(&map(&[])).unwrap();
        assert!(c.jobs_enabled);
        assert_eq!(c.job_workers, 2);
        assert_eq!(c.job_lease_seconds, 60);
        let c = Config::from_map(&map(&[("JOBS", "off"), ("JOB_WORKERS", "0")])).unwrap();
        assert!(!c.jobs_enabled);
        assert_eq!(c.job_workers, 0);
        for (k, v) in [
            ("JOBS", "maybe"),
            ("JOB_WORKERS", "65"),
            ("JOB_WORKERS", "-1"),
        ] {
            let e = Config::from_map(&map(&[(k, v)])).unwrap_err();
            assert!(e.0.contains(k), "{}", e.0);
        }
    }

    #[test]
    fn plan_cache_mode_is_generic_or_auto() {
        let c = Config::from_map(&map(&[("DATABASE_PLAN_CACHE_MODE", "auto")])).unwrap();
        assert_eq!(c.database_plan_cache_mode.as_postgres(), "auto");
        let c = Config::from_map(&map(&[("DATABASE_PLAN_CACHE_MODE", "generic")])).unwrap();
        assert_eq!(
            c.database_plan_cache_mode.as_postgres(),
            "force_generic_plan"
        );
        let e = Config::from_map(&map(&[("DATABASE_PLAN_CACHE_MODE", "custom")])).unwrap_err();
        assert!(e.0.contains("DATABASE_PLAN_CACHE_MODE"), "{}", e.0);
    }

    #[test]
    fn introspection_is_for_admins_in_production_unless_configured() {
        let strong = "x".repeat(32);
        let prod = production(&strong);
        let c = Config::from_map(&map(&prod)).unwrap();
        assert_eq!(c.graphql_introspection, Introspection::Admin);
        let mut off = prod.clone();
        off.push(("GRAPHQL_INTROSPECTION", "off"));
        let c = Config::from_map(&map(&off)).unwrap();
        assert_eq!(c.graphql_introspection, Introspection::Off);
        let c = Config::from_map(&map(&[("GRAPHQL_INTROSPECTION", "admin")])).unwrap();
        assert_eq!(c.graphql_introspection, Introspection::Admin);
        let e = Config::from_map(&map(&[("GRAPHQL_INTROSPECTION", "yes")])).unwrap_err();
        assert!(e.0.contains("GRAPHQL_INTROSPECTION"), "{}", e.0);
        let e = Config::from_map(&map(&[("GRAPHQL_MAX_ALIASES", "0")])).unwrap_err();
        assert!(e.0.contains("GRAPHQL_MAX_ALIASES"), "{}", e.0);
    }

    #[test]
    fn production_refuses_weak_or_missing_secret_and_default_seed_password() {
        let strong = "x".repeat(32);
        let e = Config::from_map(&map(&[("APP_ENV", "production")])).unwrap_err();
        assert!(e.0.contains("JWT_SECRET"), "{e}");
        let e = Config::from_map(&map(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "short"),
            ("SEED_ADMIN_PASSWORD", "Str0ngPassw0rd"),
        ]))
        .unwrap_err();
        assert!(e.0.contains("JWT_SECRET"), "{e}");
        let e = Config::from_map(&map(&[("APP_ENV", "production"), ("JWT_SECRET", &strong)]))
            .unwrap_err();
        assert!(e.0.contains("SEED_ADMIN_PASSWORD"), "{e}");
        let ok = Config::from_map(&map(&production(&strong)));
        assert!(ok.is_ok());
        // URL_SIGNING_KEY is optional; set in production, it must be strong too.
        let mut short_url_key = production(&strong);
        short_url_key.push(("URL_SIGNING_KEY", "short"));
        let e = Config::from_map(&map(&short_url_key)).unwrap_err();
        assert!(
            e.0.contains("URL_SIGNING_KEY") && !e.0.contains("short"),
            "{e}"
        );
        let url_key = "u".repeat(40);
        let mut own_url_key = production(&strong);
        own_url_key.push(("URL_SIGNING_KEY", &url_key));
        let c = Config::from_map(&map(&own_url_key)).unwrap();
        assert_eq!(
            c.url_signing_key.as_ref().map(|k| k.expose_secret()),
            Some(url_key.as_str())
        );
        assert!(!format!("{c:?}").contains(&url_key));
    }

    #[test]
    fn hsts_defaults_to_a_year_in_production_only_and_can_be_turned_off() {
        assert_eq!(Config::from_map(&map(&[])).unwrap().hsts_max_age_seconds, 0);
        let strong = "x".repeat(32);
        let prod = production(&strong);
        let c = Config::from_map(&map(&prod)).unwrap();
        assert_eq!(c.hsts_max_age_seconds, 31_536_000);
        let mut off = prod.clone();
        off.push(("HSTS_MAX_AGE_SECONDS", "0"));
        assert_eq!(
            Config::from_map(&map(&off)).unwrap().hsts_max_age_seconds,
            0
        );
        let e = Config::from_map(&map(&[("HSTS_MAX_AGE_SECONDS", "-1")])).unwrap_err();
        assert!(e.0.contains("HSTS_MAX_AGE_SECONDS"), "{e}");
    }

    #[test]
    fn webpay_integration_credentials_only_outside_production() {
        let dev = Config::from_map(&map(&[])).unwrap();
        let w = dev.webpay.expect("webpay in development");
        assert_eq!(w.commerce_code, WEBPAY_INTEGRATION_CODE);
        assert_eq!(w.base_url, "https://webpay3gint.transbank.cl");
        let strong = "x".repeat(32);
        let base = production(&strong);
        let prod = Config::from_map(&map(&base)).unwrap();
        assert!(prod.webpay.is_none(), "no fallback to integration keys");
        let mut vars = base.clone();
        vars.extend([
            ("WEBPAY_COMMERCE_CODE", "597000000001"),
            ("WEBPAY_API_KEY_SECRET", "a-real-secret"),
            ("WEBPAY_BASE_URL", "https://webpay3g.transbank.cl/"),
        ]);
        let w = Config::from_map(&map(&vars)).unwrap().webpay.unwrap();
        assert_eq!(w.base_url, "https://webpay3g.transbank.cl");
        assert_eq!(w.commerce_code, "597000000001");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (k, v) in [
            ("APP_ADDR", "nope"),
            ("ACCESS_TOKEN_TTL_SECONDS", "-5"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "many"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("AUTO_MIGRATE", "maybe"),
            ("APP_ENV", "staging"),
            ("LOG_FORMAT", "xml"),
            ("CORS_ALLOWED_ORIGINS", "shop.example.cl"),
            ("MEDICINAL_CATALOG_MODE", "visible"),
        ] {
            let e = Config::from_map(&map(&[(k, v)])).unwrap_err();
            assert!(e.0.contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn trusted_proxies_accept_addresses_and_ranges() {
        let c = Config::from_map(&map(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")])).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
    }
}
