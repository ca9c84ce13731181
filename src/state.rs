//! Shared application state: one per running app (tests run many side by side).

use std::any::Any;
use std::sync::{Arc, OnceLock};

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::infra::freshness::Freshness;
use crate::infra::jobs::{JobContext, Registry};
use crate::infra::passwords::PasswordHasher;
use crate::infra::rate_limit::RateLimits;
use crate::infra::storage::Storage;
use crate::infra::tokens::TokenKeys;
use crate::infra::url_signing::UrlSigner;
use crate::metrics::Metrics;

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
    /// Where mail goes (`SMTP_URL`, or `.eml` files under `MAIL_DIR`).
    pub mailer: Arc<crate::infra::mail::Transport>,
    /// Signs and checks the download URLs of private files and data exports.
    pub url_signer: Arc<UrlSigner>,
    /// Where stored files' bytes live (`UPLOAD_DIR`, or the bucket `STORAGE_URL` names).
    pub storage: Storage,
    /// The job kinds and schedules of this build, installed once at start-up by the composition
    /// root ([`crate::build_app`]) and shared by the runner and [`crate::infra::jobs::run_queued_now`].
    jobs: Arc<OnceLock<Registry<AppState>>>,
    /// The in-transaction reactions to domain events (`services::platform::events::Reactions`,
    /// a type this layer cannot name), installed once at start-up by the composition root.
    reactions: Arc<OnceLock<Box<dyn Any + Send + Sync>>>,
    /// Set once SIGTERM arrived: `/readyz` answers 503 while the process finishes what it has.
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    pub fn new(db: Db, config: Config, clock: Clock, metrics: Metrics, storage: Storage) -> Self {
        let tokens = Arc::new(TokenKeys::new(&config));
        let passwords =
            PasswordHasher::new(config.auth.argon2_memory_kib, config.auth.argon2_iterations);
        let limits = Arc::new(RateLimits::new(
            &config,
            metrics.rate_limit_fallbacks.clone(),
        ));
        let catalogue = Arc::new(Freshness::default());
        let url_signer = Arc::new(UrlSigner::new(&config));
        let mailer = Arc::new(
            crate::infra::mail::Transport::new(config.mail.smtp.as_ref(), config.mail.dir.clone())
                .expect("SMTP_URL was checked with the configuration"),
        );
        let provider_timeout =
            std::time::Duration::from_secs(config.payments.provider_timeout_seconds as u64);
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
            mailer,
            url_signer,
            storage,
            jobs: Arc::default(),
            reactions: Arc::default(),
            draining: Arc::default(),
        }
    }
}

impl AppState {
    /// Installs the job registry (once; a second call is ignored).
    pub fn install_jobs(&self, registry: Registry<AppState>) {
        let _ = self.jobs.set(registry);
    }

    /// The process is shutting down: it stops being ready (and never becomes ready again).
    pub fn begin_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Installs the in-transaction reactions (once; a second call is ignored).
    pub fn install_reactions<T: Any + Send + Sync>(&self, reactions: T) {
        let _ = self.reactions.set(Box::new(reactions));
    }

    /// The installed reactions, when they are of type `T`.
    pub fn reactions<T: Any>(&self) -> Option<&T> {
        self.reactions.get()?.downcast_ref()
    }

    /// The installed job registry (empty before [`AppState::install_jobs`]).
    pub fn jobs(&self) -> Registry<AppState> {
        self.jobs.get().cloned().unwrap_or_default()
    }
}

impl JobContext for AppState {
    fn db(&self) -> &Db {
        &self.db
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn registry(&self) -> Option<&Registry<Self>> {
        self.jobs.get()
    }
}
