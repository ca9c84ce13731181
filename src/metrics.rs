//! Prometheus metrics. Each app instance owns its registry (tests run many apps in one process).

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// The metrics handles, shared: cloning them (every request clones the app state) is one
/// reference count, not one per metric.
#[derive(Clone)]
pub struct Metrics(std::sync::Arc<MetricHandles>);

impl std::ops::Deref for Metrics {
    type Target = MetricHandles;
    fn deref(&self) -> &MetricHandles {
        &self.0
    }
}

pub struct MetricHandles {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub db_statements: IntCounter,
    pub db_statement_failures: IntCounter,
    pub db_statement_duration: Histogram,
    pub db_pool_size: IntGauge,
    pub db_pool_idle: IntGauge,
    pub graphql_operations: IntCounterVec,
    pub login_failures: IntCounter,
    pub rate_limited: IntCounterVec,
    pub orders_created: IntCounter,
    pub order_transitions: IntCounterVec,
    pub payments: IntCounterVec,
    pub webhooks: IntCounterVec,
    pub refund_required: IntCounter,
    pub db_contention: IntCounterVec,
    pub outbox_events: IntCounterVec,
    pub outbox_deliveries: IntCounterVec,
    pub emails_sent: IntCounterVec,
    pub emails_failed: IntCounterVec,
    pub jobs_pending: IntGauge,
    pub jobs_running: IntGauge,
    pub jobs_failed: IntCounterVec,
    pub jobs_dead: IntCounterVec,
    pub job_duration: HistogramVec,
    pub response_cache_hits: IntCounterVec,
    pub response_cache_misses: IntCounterVec,
    pub response_cache_bytes: IntGauge,
    pub persisted_queries: IntCounterVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are static and unique, so registration cannot fail.
    r.register(Box::new(c.clone()))
        .expect("metric registration");
    c
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        Metrics(std::sync::Arc::new(MetricHandles {
            http_requests: register(
                &r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests by route and status"),
                    &["method", "route", "status"],
                )
                .expect("metric"),
            ),
            http_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "http_request_duration_seconds",
                        "HTTP request latency by route and status",
                    )
                    .buckets(buckets.clone()),
                    &["method", "route", "status"],
                )
                .expect("metric"),
            ),
            db_statements: register(
                &r,
                IntCounter::new("db_statements_total", "SQL statements executed").expect("metric"),
            ),
            db_statement_failures: register(
                &r,
                IntCounter::new("db_statement_failures_total", "SQL statements that failed")
                    .expect("metric"),
            ),
            db_statement_duration: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("db_statement_duration_seconds", "SQL statement latency")
                        .buckets(buckets),
                )
                .expect("metric"),
            ),
            db_pool_size: register(
                &r,
                IntGauge::new("db_pool_connections", "Open database connections").expect("metric"),
            ),
            db_pool_idle: register(
                &r,
                IntGauge::new("db_pool_idle_connections", "Idle database connections")
                    .expect("metric"),
            ),
            graphql_operations: register(
                &r,
                IntCounterVec::new(
                    Opts::new("graphql_operations_total", "GraphQL operations executed"),
                    &["operation", "outcome"],
                )
                .expect("metric"),
            ),
            login_failures: register(
                &r,
                IntCounter::new("auth_login_failures_total", "Failed login attempts")
                    .expect("metric"),
            ),
            rate_limited: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "rate_limited_requests_total",
                        "Requests refused by a rate limit",
                    ),
                    &["limit"],
                )
                .expect("metric"),
            ),
            orders_created: register(
                &r,
                IntCounter::new("orders_created_total", "Orders created by checkout")
                    .expect("metric"),
            ),
            order_transitions: register(
                &r,
                IntCounterVec::new(
                    Opts::new("order_status_transitions_total", "Order status changes"),
                    &["from", "to"],
                )
                .expect("metric"),
            ),
            payments: register(
                &r,
                IntCounterVec::new(
                    Opts::new("payments_total", "Payment outcomes by provider"),
                    &["provider", "outcome"],
                )
                .expect("metric"),
            ),
            webhooks: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "payment_webhooks_total",
                        "Webhook deliveries by provider and outcome",
                    ),
                    &["provider", "outcome"],
                )
                .expect("metric"),
            ),
            db_contention: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "db_contention_total",
                        "Transactions rolled back by a deadlock or serialization failure: retried (run again by the server) or given_up (answered 503)",
                    ),
                    &["outcome"],
                )
                .expect("metric"),
            ),
            refund_required: register(
                &r,
                IntCounter::new(
                    "payments_refund_required_total",
                    "Payments that need a manual refund",
                )
                .expect("metric"),
            ),
            jobs_pending: register(
                &r,
                IntGauge::new(
                    "jobs_pending",
                    "Jobs waiting to run (queued, or failed and waiting for their retry), read at scrape time",
                )
                .expect("metric"),
            ),
            jobs_running: register(
                &r,
                IntGauge::new(
                    "jobs_running",
                    "Jobs leased by a worker (any process), read at scrape time",
                )
                .expect("metric"),
            ),
            jobs_failed: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "jobs_failed_total",
                        "Job attempts that failed (then retried or dead-lettered), by kind",
                    ),
                    &["kind"],
                )
                .expect("metric"),
            ),
            jobs_dead: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "jobs_dead_total",
                        "Jobs dead-lettered (out of attempts or failed for good), by kind",
                    ),
                    &["kind"],
                )
                .expect("metric"),
            ),
            job_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("job_duration_seconds", "Job attempts' duration, by kind")
                        .buckets(vec![
                            0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        ]),
                    &["kind"],
                )
                .expect("metric"),
            ),
            outbox_events: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "outbox_events_total",
                        "Domain events written to the outbox, by type (counted when written)",
                    ),
                    &["type"],
                )
                .expect("metric"),
            ),
            emails_sent: register(
                &r,
                IntCounterVec::new(
                    Opts::new("emails_sent_total", "Mail messages handed to SMTP (or written to MAIL_DIR), by template"),
                    &["template"],
                )
                .expect("metric"),
            ),
            emails_failed: register(
                &r,
                IntCounterVec::new(
                    Opts::new("emails_failed_total", "Mail attempts that failed (then retried or dead-lettered), by template"),
                    &["template"],
                )
                .expect("metric"),
            ),
            outbox_deliveries: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "outbox_deliveries_total",
                        "Outbox events handed to subscribers, by subscriber and outcome (delivered, failed, skipped)",
                    ),
                    &["subscriber", "outcome"],
                )
                .expect("metric"),
            ),
            response_cache_hits: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "response_cache_hits_total",
                        "Catalogue reads answered from the response cache, by surface (rest, graphql)",
                    ),
                    &["surface"],
                )
                .expect("metric"),
            ),
            response_cache_misses: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "response_cache_misses_total",
                        "Cacheable catalogue reads that were executed, by surface (rest, graphql)",
                    ),
                    &["surface"],
                )
                .expect("metric"),
            ),
            response_cache_bytes: register(
                &r,
                IntGauge::new(
                    "response_cache_bytes",
                    "Bytes the response cache holds (bodies and keys)",
                )
                .expect("metric"),
            ),
            persisted_queries: register(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "persisted_queries_total",
                        "Automatic persisted query lookups: hit, miss, registered",
                    ),
                    &["outcome"],
                )
                .expect("metric"),
            ),
            registry: r,
        }))
    }

    pub fn observe_statement(&self, elapsed: Duration, failed: bool) {
        self.db_statements.inc();
        self.db_statement_duration.observe(elapsed.as_secs_f64());
        if failed {
            self.db_statement_failures.inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
