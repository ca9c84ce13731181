//! Shared application state: one per running app (tests run many side by side).

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::graphql::documents::ParsedDocuments;
use crate::graphql::persisted::PersistedQueries;
use crate::http::response_cache::ResponseCache;
use crate::metrics::Metrics;
use crate::services::catalog::freshness::Freshness;
use crate::services::passwords::PasswordHasher;
use crate::services::rate_limit::RateLimits;
use crate::services::tokens::TokenKeys;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub metrics: Metrics,
    pub tokens: Arc<TokenKeys>,
    pub passwords: PasswordHasher,
    pub limits: Arc<RateLimits>,
    /// Outbound HTTP for payment providers: connection and request timeouts, pooled.
    pub http: reqwest::Client,
    /// The catalogue's generation: services that write the catalogue hold `catalogue.writing()`.
    pub catalogue: Arc<Freshness>,
    pub response_cache: Arc<ResponseCache>,
    pub persisted_queries: Arc<PersistedQueries>,
    /// GraphQL documents parsed once, by their text.
    pub graphql_documents: Arc<ParsedDocuments>,
    /// Where mail goes (`SMTP_URL`, or `.eml` files under `MAIL_DIR`).
    pub mailer: Arc<crate::services::mail::Transport>,
    /// The GraphQL operation names metrics count by name (the REST layer's; any other operation
    /// is `other`, keeping the label set bounded). Handed in by whoever assembles the app
    /// ([`crate::build_app`]), so the GraphQL layer needs nothing from the REST one.
    pub graphql_operation_labels: Arc<std::collections::HashSet<&'static str>>,
}

impl AppState {
    pub fn new(db: Db, config: Config, clock: Clock, metrics: Metrics) -> Self {
        let tokens = Arc::new(TokenKeys::new(&config));
        let passwords = PasswordHasher::new(config.argon2_memory_kib, config.argon2_iterations);
        let limits = Arc::new(RateLimits::new(config.auth_rate_limit_per_minute));
        let catalogue = Arc::new(Freshness::default());
        let response_cache = Arc::new(ResponseCache::new(
            &config,
            Arc::clone(&catalogue),
            metrics.clone(),
        ));
        let persisted_queries = Arc::new(PersistedQueries::new(
            config.persisted_queries_max_bytes,
            metrics.clone(),
        ));
        let mailer = Arc::new(
            crate::services::mail::Transport::new(config.smtp.as_ref(), config.mail_dir.clone())
                .expect("SMTP_URL was checked with the configuration"),
        );
        let provider_timeout =
            std::time::Duration::from_secs(config.provider_timeout_seconds as u64);
        AppState {
            db,
            config: Arc::new(config),
            clock,
            metrics,
            tokens,
            passwords,
            limits,
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(provider_timeout)
                .user_agent(concat!("dispensary/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client"),
            catalogue,
            response_cache,
            persisted_queries,
            graphql_operation_labels: Arc::default(),
            graphql_documents: Arc::new(ParsedDocuments::default()),
            mailer,
        }
    }
}
