//! Test harness: `TestApp::spawn()` starts the app on 127.0.0.1:0 over a fresh database.

use std::collections::HashMap;
use std::net::SocketAddr;

use dispensary::clock::Clock;
use dispensary::config::Config;
use dispensary::state::AppState;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

pub const ADMIN_EMAIL: &str = "admin@dispensario.local";
pub const ADMIN_PASSWORD: &str = "Admin12345!";
pub const CUSTOMER_EMAIL: &str = "cliente@dispensario.local";
pub const CUSTOMER_PASSWORD: &str = "Cliente12345";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub clock: Clock,
    sqlite_file: Option<std::path::PathBuf>,
    pub upload_dir: std::path::PathBuf,
    database_url: String,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The error body's code; panics with the body when the response is not in the error model.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.text))
    }

    pub fn has_detail(&self, field: &str, issue: &str) -> bool {
        self.body["error"]["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["field"] == field && x["issue"] == issue))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn fresh_database_url() -> (String, Option<std::path::PathBuf>) {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin_url) => {
            let name = format!("dispensary_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let (prefix, _) = admin_url
                .rsplit_once('/')
                .expect("database URL with a path");
            (format!("{prefix}/{name}"), None)
        }
        None => {
            let path = std::env::temp_dir().join(format!(
                "dispensary-test-{}.db",
                uuid::Uuid::new_v4().simple()
            ));
            (format!("sqlite://{}?mode=rwc", path.display()), Some(path))
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts an app with extra environment variables on top of the test defaults.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        let (url, sqlite_file) = fresh_database_url().await;
        Self::start(url, sqlite_file, extra, true).await
    }

    /// A second server instance over this one's database (its own pool, response cache and
    /// catalogue watcher), as another replica behind a load balancer would be.
    pub async fn replica(&self) -> TestApp {
        let mut other = Self::start(self.database_url.clone(), None, &[], false).await;
        other.watch_catalogue();
        other
    }

    /// A job runner over this app with this build's registry (`composition::registry`), polling every
    /// 20 ms, as `serve` starts one.
    pub fn job_runner(&self, workers: usize) -> dispensary::services::platform::jobs::Runner {
        use dispensary::services::platform::jobs;
        jobs::Runner::new(
            self.state.clone(),
            self.state.jobs(),
            jobs::RunnerOptions {
                workers,
                lease: chrono::Duration::seconds(30),
                poll: std::time::Duration::from_millis(20),
            },
        )
    }

    /// [`Self::replica`] with extra environment variables (the same ones as this app's, usually).
    pub async fn replica_with(&self, extra: &[(&str, &str)]) -> TestApp {
        let mut other = Self::start(self.database_url.clone(), None, extra, false).await;
        other.watch_catalogue();
        other
    }

    /// Starts following other instances' catalogue writes, as `serve` does.
    pub fn watch_catalogue(&mut self) {
        self.watcher = Some(dispensary::infra::freshness::watch(
            self.state.db.clone(),
            self.state.catalogue.clone(),
            std::time::Duration::from_millis(200),
        ));
    }

    async fn start(
        url: String,
        sqlite_file: Option<std::path::PathBuf>,
        extra: &[(&str, &str)],
        seed: bool,
    ) -> TestApp {
        let upload_dir = std::env::temp_dir().join(format!(
            "dispensary-uploads-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut vars: HashMap<String, String> = HashMap::from([
            ("APP_ENV".into(), "test".into()),
            ("DATABASE_URL".into(), url.clone()),
            ("DATABASE_MAX_CONNECTIONS".into(), "5".into()),
            (
                "JWT_SECRET".into(),
                "test-secret-that-is-long-enough-0123456789".into(),
            ),
            // A key of the test's own: production's check refuses the documented default.
            (
                "DATA_ENCRYPTION_KEY".into(),
                "dGVzdC1kYXRhLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=".into(),
            ),
            ("AUTH_RATE_LIMIT_PER_MINUTE".into(), "1000".into()),
            ("UPLOAD_DIR".into(), upload_dir.display().to_string()),
            (
                "MAIL_DIR".into(),
                upload_dir.join("mail").display().to_string(),
            ),
        ]);
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let mut config = Config::from_map(&vars).expect("test config");
        // Cheap hashing keeps the suite fast; production cost is covered by the config defaults.
        config.auth.argon2_memory_kib = 64;
        config.auth.argon2_iterations = 1;
        let clock = Clock::default();
        let (router, state) = dispensary::build_app(config, clock.clone())
            .await
            .expect("build app");
        if seed {
            dispensary::seed::run(&state).await.expect("seed");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .ok();
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            state,
            clock,
            sqlite_file,
            upload_dir,
            database_url: url,
            watcher: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// A request with extra headers (and no body).
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::DELETE, path, token, None).await
    }

    /// POST /graphql.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Resp {
        self.post_gql(token, json!({ "query": query, "variables": variables }))
            .await
    }

    pub async fn post_gql(&self, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, "/graphql", token, Some(body)).await
    }

    /// Logs in and returns the whole REST login body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let r = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login failed: {}", r.text);
        r.body
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// The seeded customer's access token.
    pub async fn customer_token(&self) -> String {
        self.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Registers a customer the admin then marks `validatedMedicinal` (medicinal access) and
    /// returns (access token, user id).
    pub async fn validated_customer(&self, email: &str) -> (String, i64) {
        let admin = self.admin_token().await;
        let (token, id, _) = self.register(email).await;
        let r = self
            .patch(
                &format!("/api/users/{id}"),
                Some(&admin),
                json!({"validatedMedicinal": true}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "validating {email}: {}", r.text);
        assert_eq!(r.body["validatedMedicinal"], true, "{}", r.text);
        (token, id)
    }

    /// Registers a new customer and returns (access token, user id, the whole body).
    pub async fn register(&self, email: &str) -> (String, i64, Value) {
        let r = self
            .post(
                "/api/auth/register",
                None,
                json!({"name": "Test Customer", "email": email, "password": "secreto123"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "register failed: {}", r.text);
        (
            r.body["accessToken"].as_str().expect("token").to_string(),
            r.body["user"]["id"].as_i64().expect("id"),
            r.body,
        )
    }

    /// Runs one SQL statement on the app's database (to set up a state no API reaches).
    pub async fn execute(&self, sql: &str) {
        let backend = self.state.db.get_database_backend();
        self.state
            .db
            .execute_raw(sea_orm::Statement::from_string(backend, sql.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// One scalar from the database (count(*) and the like).
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        let backend = self.state.db.get_database_backend();
        let row = self
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_string()))
            .await
            .expect("query")
            .expect("row");
        row.try_get_by_index::<i64>(0).expect("i64 column")
    }

    pub async fn scalar_string(&self, sql: &str) -> Option<String> {
        let backend = self.state.db.get_database_backend();
        let row = self
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_string()))
            .await
            .expect("query")?;
        row.try_get_by_index::<Option<String>>(0)
            .expect("string column")
    }

    /// Deadlocks PostgreSQL detected in this test's database so far (`pg_stat_database`); 0 on
    /// SQLite, which has none. Waits first for idle backends to flush their statistics (at most
    /// once a second in PostgreSQL 15+).
    pub async fn deadlocks_detected(&self) -> i64 {
        if self.state.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return 0;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
        self.scalar_i64("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .await
    }

    /// The current value of a Prometheus counter (summing every label set when `labels` is empty).
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.get("/metrics", None).await.text;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
            .filter(|l| l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        let _ = std::fs::remove_dir_all(&self.upload_dir);
        if let Some(p) = &self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
        }
    }
}

// Commerce fixtures shared by several test modules.

/// The test provider's webhook secret (the development default of `TEST_PAYMENT_SECRET`).
const TEST_PAYMENT_SECRET: &str = "dev-test-payment-secret";

/// The id of the seeded variant with `sku`.
pub async fn variant_id(app: &TestApp, sku: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT id FROM product_variants WHERE sku = '{sku}'"
    ))
    .await
}

/// A coupon created by the admin from `body`: its id.
pub async fn create_coupon(app: &TestApp, admin: &str, body: Value) -> i64 {
    let r = app.post("/api/coupons", Some(admin), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// A pending order of `quantity` × `sku` (optionally with a coupon) and the answer of starting
/// its payment with `provider`.
pub async fn checkout_and_start(
    app: &TestApp,
    token: &str,
    sku: &str,
    quantity: i64,
    coupon: Option<&str>,
    provider: &str,
) -> (i64, Resp) {
    let vid = variant_id(app, sku).await;
    let mut body = json!({"items": [{"variantId": vid, "quantity": quantity}], "address": {"addressLine": "Av. Matta 1", "comuna": "Santiago", "region": "RM"}, "shippingMethod": "starken"});
    if let Some(c) = coupon {
        body["couponCode"] = json!(c);
    }
    let o = app.post("/api/checkout/confirm", Some(token), body).await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    let id = o.body["id"].as_i64().unwrap();
    let s = app
        .post(
            "/api/payments/start",
            Some(token),
            json!({"orderId": id, "provider": provider}),
        )
        .await;
    (id, s)
}

/// The same with the test provider, which must accept.
pub async fn order_and_start(
    app: &TestApp,
    token: &str,
    sku: &str,
    quantity: i64,
    coupon: Option<&str>,
) -> (i64, Value) {
    let (id, s) = checkout_and_start(app, token, sku, quantity, coupon, "test").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    (id, s.body)
}

pub fn event(app: &TestApp, event_id: &str, txn: &str, status: &str, amount: i64) -> String {
    json!({"eventId": event_id, "providerTxnId": txn, "status": status, "amountCents": amount, "timestamp": app.clock.now().timestamp()}).to_string()
}

pub async fn webhook(app: &TestApp, body: &str, signature: Option<String>) -> Resp {
    let mut req = app
        .client
        .post(app.url("/webhooks/payments/test"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("X-Test-Signature", s);
    }
    app.send(req).await
}

pub fn sign(body: &str) -> String {
    dispensary::services::payments::test_provider::sign(TEST_PAYMENT_SECRET, body.as_bytes())
}

/// An order of `quantity` units of `sku`, paid through the test provider: its id.
pub async fn paid_order(app: &TestApp, token: &str, sku: &str, quantity: i64) -> i64 {
    let (id, _) = order_and_start(app, token, sku, quantity, None).await;
    let r = app
        .post(
            "/api/payments/confirm",
            Some(token),
            json!({"orderId": id, "provider": "test", "params": {"mock": "paid"}}),
        )
        .await;
    assert_eq!(r.body["status"], "paid", "{}", r.text);
    id
}

/// Every log line the server writes, from every test running in this binary, as JSON lines: a
/// global subscriber installed on first use (a thread's own default would miss callsites whose
/// interest another test's thread already cached).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn global() -> CapturedLogs {
        static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = CapturedLogs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
            logs
        })
        .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}
