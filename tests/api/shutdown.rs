//! A deploy's hand-over: the real binary gets SIGTERM while a slow request is under way.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_refuses_new_connections_and_exits_cleanly() {
    let (database_url, sqlite_file) = crate::helpers::fresh_database_url().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("dispensary-shutdown-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_dispensary"))
        .env("DATABASE_URL", &database_url)
        .env("APP_ADDR", &addr)
        .env("APP_ENV", "test")
        .env("UPLOAD_DIR", dir.join("uploads"))
        .env("MAIL_DIR", dir.join("mail"))
        .env("SHUTDOWN_GRACE_SECONDS", "10")
        .env("SHUTDOWN_DELAY_SECONDS", "1")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the server binary");
    let client = reqwest::Client::new();
    let readyz = format!("http://{addr}/readyz");
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(&readyz).send().await {
            if r.status() == reqwest::StatusCode::OK {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A slow request: its head now, its body a few bytes at a time over about three seconds.
    let slow = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let body = br#"{"query": "{ __typename }"}"#;
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            for chunk in body.chunks(7) {
                tokio::time::sleep(Duration::from_millis(750)).await;
                s.write_all(chunk).await.unwrap();
            }
            let mut answer = String::new();
            tokio::time::timeout(Duration::from_secs(15), s.read_to_string(&mut answer))
                .await
                .expect("the answer within the grace")
                .expect("a readable answer");
            answer
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // At once: not ready, while connections are still accepted for SHUTDOWN_DELAY_SECONDS.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = client.get(&readyz).send().await.expect("still accepting");
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    // After the delay, new connections are refused, while the slow request goes on.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!slow.is_finished(), "the slow request is still under way");
    let refused = tokio::net::TcpStream::connect(&addr).await;
    assert!(
        refused.is_err(),
        "new connections are refused while draining"
    );

    let answer = slow.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""__typename":"Query""#), "{answer}");

    // Then the process exits 0, within the grace.
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(12),
            "still running past SHUTDOWN_GRACE_SECONDS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(status.success(), "exit {status:?}; log:\n{log}");
    assert!(log.contains("shut down"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(p) = sqlite_file {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
}
