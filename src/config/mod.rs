//! Typed configuration from the environment (and `.env` when present, loaded by `main`).
//!
//! Every variable is parsed here, once, at start-up: a malformed value is an error that names the
//! variable, and production refuses weak secrets. One section per area, each in its own file and
//! parsed by its own function: `config.database`, `config.http`, `config.graphql`, `config.auth`,
//! `config.store`, `config.storage`, `config.jobs`, `config.mail`, `config.privacy`,
//! `config.payments` (with `.webpay`, `.flow`, `.mp`), `config.redis`.

pub mod auth;
pub mod database;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod payments;
pub mod privacy;
mod reader;
pub mod shared;
pub mod storage;
pub mod store;
pub mod webhooks;

use std::collections::HashMap;

pub use secrecy::{ExposeSecret, SecretString};

pub use auth::{
    AuthConfig, KeyBytes, DEFAULT_SEED_ADMIN_EMAIL, DEFAULT_SEED_ADMIN_PASSWORD,
    DEV_DATA_ENCRYPTION_KEY,
};
pub use database::{DatabaseConfig, DatabaseUrl, PlanCacheMode, DEFAULT_DATABASE_URL};
pub use graphql::{GraphqlConfig, Introspection};
pub use http::HttpConfig;
pub use jobs::JobsConfig;
pub use mail::MailConfig;
pub use payments::{
    FlowConfig, MpConfig, PaymentsConfig, WebpayConfig, WEBPAY_INTEGRATION_CODE,
    WEBPAY_INTEGRATION_SECRET,
};
pub use privacy::{PrivacyConfig, DEFAULT_PRIVACY_POLICY_VERSION};
use reader::Reader;
pub use shared::RedisConfig;
pub use storage::StorageConfig;
pub use store::{CatalogMode, StoreConfig};
pub use webhooks::WebhooksConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV`: `development` (the default), `test` or `production`.
    pub app_env: AppEnv,
    /// `LOG_FORMAT`: `json` (the default) or `pretty`.
    pub log_format: LogFormat,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub graphql: GraphqlConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub storage: StorageConfig,
    pub jobs: JobsConfig,
    pub mail: MailConfig,
    pub privacy: PrivacyConfig,
    pub payments: PaymentsConfig,
    pub redis: RedisConfig,
    pub webhooks: WebhooksConfig,
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
        let app_env = r.one_of(
            "APP_ENV",
            AppEnv::Development,
            &[
                ("development", AppEnv::Development),
                ("test", AppEnv::Test),
                ("production", AppEnv::Production),
            ],
        )?;
        let production = app_env == AppEnv::Production;
        Ok(Config {
            app_env,
            log_format: r.one_of(
                "LOG_FORMAT",
                LogFormat::Json,
                &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)],
            )?,
            auth: AuthConfig::parse(&r, production)?,
            database: DatabaseConfig::parse(&r)?,
            http: HttpConfig::parse(&r, production)?,
            graphql: GraphqlConfig::parse(&r, production)?,
            store: StoreConfig::parse(&r)?,
            storage: StorageConfig::parse(&r)?,
            jobs: JobsConfig::parse(&r)?,
            mail: MailConfig::parse(&r)?,
            privacy: PrivacyConfig::parse(&r)?,
            payments: PaymentsConfig::parse(&r, production)?,
            redis: RedisConfig::parse(&r)?,
            webhooks: WebhooksConfig::parse(&r, production)?,
        })
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    pub fn is_sqlite(&self) -> bool {
        self.database.url.starts_with("sqlite:")
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
        assert!(
            c.payments.mp.is_some()
                && c.payments.flow.is_some()
                && c.payments.webpay.is_some()
                && c.mail.smtp.is_some()
        );
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
        assert_eq!(c.auth.jwt_secret.expose_secret(), secrets[0].1);
        assert_eq!(
            c.database.url,
            "postgres://shop:db-Passw0rd-9999@db.internal:5432/shop"
        );
    }

    #[test]
    fn production_requires_a_data_encryption_key_and_admin_2fa_by_default() {
        let strong = "x".repeat(32);
        let mut prod = production(&strong);
        let ok = Config::from_map(&map(&prod)).unwrap();
        assert!(ok.auth.admin_require_2fa);
        assert_ne!(
            ok.auth.data_encryption_key,
            KeyBytes::parse(DEV_DATA_ENCRYPTION_KEY).unwrap()
        );
        assert!(!format!("{ok:?}").contains(&format!("{:?}", ok.auth.data_encryption_key.0)));
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
        assert!(
            !Config::from_map(&map(&prod))
                .unwrap()
                .auth
                .admin_require_2fa
        );

        let dev = Config::from_map(&map(&[])).unwrap();
        assert!(!dev.auth.admin_require_2fa);
        assert_eq!(
            dev.auth.data_encryption_key,
            KeyBytes::parse(DEV_DATA_ENCRYPTION_KEY).unwrap()
        );
        assert!(KeyBytes::parse(PROD_DATA_KEY.trim_end_matches('=')).is_ok());
        assert!(KeyBytes::parse("not base64 at all!").is_err());
    }

    #[test]
    fn defaults_outside_production() {
        let c = Config::from_map(&map(&[])).unwrap();
        assert_eq!(c.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(c.http.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.auth.access_token_ttl_seconds, 900);
        assert_eq!(c.auth.refresh_token_ttl_seconds, 2_592_000);
        assert_eq!(c.auth.rate_limit_per_minute, 60);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.database.auto_migrate);
        assert_eq!(c.graphql.introspection, Introspection::Public);
        assert_eq!(c.database.plan_cache_mode, PlanCacheMode::Generic);
    }

    #[test]
    fn jobs_are_on_with_two_workers_unless_configured() {
        let c = Config::from_map(&map(&[])).unwrap();
        assert!(c.jobs.enabled);
        assert_eq!(c.jobs.workers, 2);
        assert_eq!(c.jobs.lease_seconds, 60);
        let c = Config::from_map(&map(&[("JOBS", "off"), ("JOB_WORKERS", "0")])).unwrap();
        assert!(!c.jobs.enabled);
        assert_eq!(c.jobs.workers, 0);
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
        assert_eq!(c.database.plan_cache_mode.as_postgres(), "auto");
        let c = Config::from_map(&map(&[("DATABASE_PLAN_CACHE_MODE", "generic")])).unwrap();
        assert_eq!(
            c.database.plan_cache_mode.as_postgres(),
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
        assert_eq!(c.graphql.introspection, Introspection::Admin);
        let mut off = prod.clone();
        off.push(("GRAPHQL_INTROSPECTION", "off"));
        let c = Config::from_map(&map(&off)).unwrap();
        assert_eq!(c.graphql.introspection, Introspection::Off);
        let c = Config::from_map(&map(&[("GRAPHQL_INTROSPECTION", "admin")])).unwrap();
        assert_eq!(c.graphql.introspection, Introspection::Admin);
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
            c.auth.url_signing_key.as_ref().map(|k| k.expose_secret()),
            Some(url_key.as_str())
        );
        assert!(!format!("{c:?}").contains(&url_key));
    }

    #[test]
    fn hsts_defaults_to_a_year_in_production_only_and_can_be_turned_off() {
        assert_eq!(
            Config::from_map(&map(&[]))
                .unwrap()
                .http
                .hsts_max_age_seconds,
            0
        );
        let strong = "x".repeat(32);
        let prod = production(&strong);
        let c = Config::from_map(&map(&prod)).unwrap();
        assert_eq!(c.http.hsts_max_age_seconds, 31_536_000);
        let mut off = prod.clone();
        off.push(("HSTS_MAX_AGE_SECONDS", "0"));
        assert_eq!(
            Config::from_map(&map(&off))
                .unwrap()
                .http
                .hsts_max_age_seconds,
            0
        );
        let e = Config::from_map(&map(&[("HSTS_MAX_AGE_SECONDS", "-1")])).unwrap_err();
        assert!(e.0.contains("HSTS_MAX_AGE_SECONDS"), "{e}");
    }

    #[test]
    fn webpay_integration_credentials_only_outside_production() {
        let dev = Config::from_map(&map(&[])).unwrap();
        let w = dev.payments.webpay.expect("webpay in development");
        assert_eq!(w.commerce_code, WEBPAY_INTEGRATION_CODE);
        assert_eq!(w.base_url, "https://webpay3gint.transbank.cl");
        let strong = "x".repeat(32);
        let base = production(&strong);
        let prod = Config::from_map(&map(&base)).unwrap();
        assert!(
            prod.payments.webpay.is_none(),
            "no fallback to integration keys"
        );
        let mut vars = base.clone();
        vars.extend([
            ("WEBPAY_COMMERCE_CODE", "597000000001"),
            ("WEBPAY_API_KEY_SECRET", "a-real-secret"),
            ("WEBPAY_BASE_URL", "https://webpay3g.transbank.cl/"),
        ]);
        let w = Config::from_map(&map(&vars))
            .unwrap()
            .payments
            .webpay
            .unwrap();
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
            ("REDIS_URL", "rediss://cache.example.cl:6380"),
            ("REDIS_URL", "cache:6379"),
            ("REDIS_KEY_PREFIX", "my store:"),
            ("SHUTDOWN_DELAY_SECONDS", "30"),
            ("SHUTDOWN_GRACE_SECONDS", "0"),
            ("STORAGE_URL", "https://bucket.example.cl"),
            ("STORAGE_URL", "s3://Bad_Bucket/x"),
            ("STORAGE_URL", "s3://tienda/a//b"),
            ("STORAGE_URL", "s3://key:secret@tienda/x"),
        ] {
            let e = Config::from_map(&map(&[(k, v)])).unwrap_err();
            assert!(e.0.contains(k), "{k}: {e}");
        }
        for (k, v) in [
            ("S3_ENDPOINT", "minio:9000"),
            ("AWS_ACCESS_KEY_ID", "only-the-id"),
            ("S3_FORCE_PATH_STYLE", "sometimes"),
        ] {
            let e = Config::from_map(&map(&[("STORAGE_URL", "s3://tienda"), (k, v)])).unwrap_err();
            assert!(e.0.contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn storage_is_a_directory_or_a_bucket() {
        assert!(Config::from_map(&map(&[])).unwrap().storage.s3.is_none());
        let c = Config::from_map(&map(&[
            ("STORAGE_URL", "s3://tienda-archivos/prod/files/"),
            ("S3_ENDPOINT", "http://127.0.0.1:9000/"),
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
        ]))
        .unwrap();
        let s3 = c.storage.s3.unwrap();
        assert_eq!(s3.bucket, "tienda-archivos");
        assert_eq!(s3.prefix, "prod/files");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.force_path_style, "the default with an endpoint");
        assert_eq!(s3.region, "us-east-1");
        assert!(
            !format!("{s3:?}").contains("s3cr3t"),
            "the secret is never shown"
        );
        let aws = Config::from_map(&map(&[("STORAGE_URL", "s3://tienda")])).unwrap();
        let aws = aws.storage.s3.unwrap();
        assert!(!aws.force_path_style && aws.credentials.is_none() && aws.prefix.is_empty());
    }

    #[test]
    fn trusted_proxies_accept_addresses_and_ranges() {
        let c = Config::from_map(&map(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")])).unwrap();
        assert_eq!(c.http.trusted_proxies.len(), 2);
    }
}
