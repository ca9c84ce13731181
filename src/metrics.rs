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
    pub rate_limit_fallbacks: IntCounter,
    pub orders_created: IntCounter,
    pub order_transitions: IntCounterVec,
    pub payments: IntCounterVec,
    pub webhooks: IntCounterVec,
    pub refund_required: IntCounter,
    pub db_contention: IntCounterVec,
    pub outbox_events: IntCounterVec,
    pub outbox_deliveries: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub webhook_delivery_seconds: Histogram,
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

/// Registers each metric on one registry as it is made. Names are static and unique, so
/// construction and registration cannot fail.
struct Maker<'r>(&'r Registry);

impl Maker<'_> {
    fn register<T: prometheus::core::Collector + Clone + 'static>(&self, c: T) -> T {
        self.0
            .register(Box::new(c.clone()))
            .expect("metric registration");
        c
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help).expect("metric"))
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels).expect("metric"))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help).expect("metric"))
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.register(Histogram::with_opts(opts).expect("metric"))
    }

    fn histograms(&self, name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.register(HistogramVec::new(opts, labels).expect("metric"))
    }
}

/// Latency buckets (seconds) of requests and statements.
const LATENCY: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Duration buckets (seconds) of job attempts.
const JOB_DURATION: &[f64] = &[
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Maker(&registry);
        let route = &["method", "route", "status"];
        Metrics(std::sync::Arc::new(MetricHandles {
            // HTTP and GraphQL
            http_requests: m.counters("http_requests_total", "HTTP requests by route and status", route),
            http_duration: m.histograms(
                "http_request_duration_seconds",
                "HTTP request latency by route and status",
                LATENCY,
                route,
            ),
            graphql_operations: m.counters(
                "graphql_operations_total",
                "GraphQL operations executed",
                &["operation", "outcome"],
            ),
            rate_limited: m.counters(
                "rate_limited_requests_total",
                "Requests refused by a rate limit",
                &["limit"],
            ),
            rate_limit_fallbacks: m.counter(
                "rate_limit_fallbacks_total",
                "Rate-limit decisions taken in process because Redis (REDIS_URL) could not be reached",
            ),
            login_failures: m.counter("auth_login_failures_total", "Failed login attempts"),
            // the database
            db_statements: m.counter("db_statements_total", "SQL statements executed"),
            db_statement_failures: m.counter("db_statement_failures_total", "SQL statements that failed"),
            db_statement_duration: m.histogram("db_statement_duration_seconds", "SQL statement latency", LATENCY),
            db_pool_size: m.gauge("db_pool_connections", "Open database connections"),
            db_pool_idle: m.gauge("db_pool_idle_connections", "Idle database connections"),
            db_contention: m.counters(
                "db_contention_total",
                "Transactions rolled back by a deadlock or serialization failure: retried (run again by the server) or given_up (answered 503)",
                &["outcome"],
            ),
            // orders and payments
            orders_created: m.counter("orders_created_total", "Orders created by checkout"),
            order_transitions: m.counters(
                "order_status_transitions_total",
                "Order status changes",
                &["from", "to"],
            ),
            payments: m.counters("payments_total", "Payment outcomes by provider", &["provider", "outcome"]),
            webhooks: m.counters(
                "payment_webhooks_total",
                "Webhook deliveries by provider and outcome",
                &["provider", "outcome"],
            ),
            refund_required: m.counter(
                "payments_refund_required_total",
                "Payments that need a manual refund",
            ),
            // jobs
            jobs_pending: m.gauge(
                "jobs_pending",
                "Jobs waiting to run (queued, or failed and waiting for their retry), read at scrape time",
            ),
            jobs_running: m.gauge(
                "jobs_running",
                "Jobs leased by a worker (any process), read at scrape time",
            ),
            jobs_failed: m.counters(
                "jobs_failed_total",
                "Job attempts that failed (then retried or dead-lettered), by kind",
                &["kind"],
            ),
            jobs_dead: m.counters(
                "jobs_dead_total",
                "Jobs dead-lettered (out of attempts or failed for good), by kind",
                &["kind"],
            ),
            job_duration: m.histograms(
                "job_duration_seconds",
                "Job attempts' duration, by kind",
                JOB_DURATION,
                &["kind"],
            ),
            // the outbox and mail
            outbox_events: m.counters(
                "outbox_events_total",
                "Domain events written to the outbox, by type (counted when written)",
                &["type"],
            ),
            outbox_deliveries: m.counters(
                "outbox_deliveries_total",
                "Outbox events handed to subscribers, by subscriber and outcome (delivered, failed, skipped)",
                &["subscriber", "outcome"],
            ),
            webhook_deliveries: m.counters(
                "webhook_deliveries_total",
                "Outbound webhook attempts, by outcome (delivered, failed, refused, gone, gave_up)",
                &["outcome"],
            ),
            webhook_delivery_seconds: m.histogram(
                "webhook_delivery_seconds",
                "Outbound webhook attempts' duration, request and answer",
                JOB_DURATION,
            ),
            emails_sent: m.counters(
                "emails_sent_total",
                "Mail messages handed to SMTP (or written to MAIL_DIR), by template",
                &["template"],
            ),
            emails_failed: m.counters(
                "emails_failed_total",
                "Mail attempts that failed (then retried or dead-lettered), by template",
                &["template"],
            ),
            // the read path
            response_cache_hits: m.counters(
                "response_cache_hits_total",
                "Catalogue reads answered from the response cache, by surface (rest, graphql)",
                &["surface"],
            ),
            response_cache_misses: m.counters(
                "response_cache_misses_total",
                "Cacheable catalogue reads that were executed, by surface (rest, graphql)",
                &["surface"],
            ),
            response_cache_bytes: m.gauge(
                "response_cache_bytes",
                "Bytes the response cache holds (bodies and keys)",
            ),
            persisted_queries: m.counters(
                "persisted_queries_total",
                "Automatic persisted query lookups: hit, miss, registered",
                &["outcome"],
            ),
            registry,
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
