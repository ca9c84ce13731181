//! Throughput of the catalogue's hottest read: `GET /api/products?pageSize=20` on the seeded catalogue.
//!
//! `cargo bench --bench catalog` starts the app in-process (release profile) on a fresh SQLite
//! database, seeds it, and drives it over HTTP on loopback with keep-alive connections.
//! `BENCH_SECONDS` (default 10), `BENCH_CONCURRENCY` (default 16), `BENCH_PATH` (default the
//! products page) and `BENCH_URL` (an already running server instead of the in-process one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start_app() -> (String, std::path::PathBuf) {
    let db = std::env::temp_dir().join(format!(
        "dispensary-bench-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let vars: HashMap<String, String> = HashMap::from([
        ("APP_ENV".into(), "test".into()),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}?mode=rwc", db.display()),
        ),
        (
            "JWT_SECRET".into(),
            "bench-secret-that-is-long-enough-0123456789".into(),
        ),
    ]);
    let config = dispensary::config::Config::from_map(&vars).expect("config");
    let (router, state) = dispensary::build_app(config, dispensary::clock::Clock::default())
        .await
        .expect("app");
    dispensary::seed::run(&state).await.expect("seed");
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
    (format!("http://{addr}"), db)
}

async fn statements(client: &reqwest::Client, base: &str) -> Option<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("db_statements_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let seconds: u64 = env_or("BENCH_SECONDS", 10);
        let concurrency: usize = env_or("BENCH_CONCURRENCY", 16);
        let path =
            std::env::var("BENCH_PATH").unwrap_or_else(|_| "/api/products?pageSize=20".into());
        let (base, db) = match std::env::var("BENCH_URL") {
            Ok(u) => (u, None),
            Err(_) => {
                let (b, d) = start_app().await;
                (b, Some(d))
            }
        };
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .expect("client");
        let url = format!("{base}{path}");
        let first = client.get(&url).send().await.expect("first request");
        assert!(
            first.status().is_success(),
            "{} answered {}",
            url,
            first.status()
        );
        let body = first.text().await.unwrap_or_default();
        let before = statements(&client, &base).await;
        client
            .get(&url)
            .send()
            .await
            .expect("request")
            .bytes()
            .await
            .ok();
        let per_request = match (before, statements(&client, &base).await) {
            (Some(a), Some(b)) => format!("{}", b - a),
            _ => "n/a".into(),
        };

        // Warm-up, then the measured run.
        let run = |dur: Duration| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let deadline = Instant::now() + dur;
                let tasks: Vec<_> = (0..concurrency)
                    .map(|_| {
                        let client = client.clone();
                        let url = url.clone();
                        tokio::spawn(async move {
                            let mut lat = Vec::new();
                            let mut errors = 0u64;
                            while Instant::now() < deadline {
                                let t = Instant::now();
                                match client.get(&url).send().await {
                                    Ok(r) if r.status().is_success() => {
                                        let _ = r.bytes().await;
                                        lat.push(t.elapsed());
                                    }
                                    _ => errors += 1,
                                }
                            }
                            (lat, errors)
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                let mut errors = 0;
                for t in tasks {
                    let (l, e) = t.await.expect("task");
                    all.extend(l);
                    errors += e;
                }
                (all, errors)
            }
        };
        run(Duration::from_secs(2)).await;
        let start = Instant::now();
        let (mut lat, errors) = run(Duration::from_secs(seconds)).await;
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!("GET {path} ({} bytes per response)", body.len());
        println!(
            "concurrency {concurrency}, {seconds} s: {} requests, {errors} errors",
            lat.len()
        );
        println!("throughput: {:.0} req/s", lat.len() as f64 / elapsed);
        println!(
            "latency p50 {:?}, p90 {:?}, p99 {:?}",
            pct(0.50),
            pct(0.90),
            pct(0.99)
        );
        println!("db statements per request: {per_request}");
        if let Some(d) = db {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", d.display()));
            }
        }
    });
}
