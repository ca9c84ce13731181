//! Operational routes: liveness, readiness, metrics, the OpenAPI document.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::App;
use crate::error::{AppError, ErrorCode};

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(app): State<App>) -> Response {
    if app.state.is_draining() {
        return not_ready("shutting down");
    }
    let db = &app.state.db;
    let check = async {
        db.ping()
            .await
            .map_err(|e| format!("database unreachable: {e}"))?;
        match crate::db::migrations_current(db).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("migrations pending".to_string()),
            Err(e) => Err(format!("cannot read migrations: {e}")),
        }
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), check).await {
        Ok(Ok(())) => Json(json!({
            "status": "ready",
            // Where the credential routes' limits are kept: a Redis outage does not make the
            // process unready (it limits alone meanwhile), but says so here.
            "rateLimits": app.state.limits.status(),
            // Where files are kept (`local` or `s3`). Not probed: a store that is down makes
            // uploads and downloads answer 503, not the whole process unready.
            "storage": { "backend": app.state.storage.backend() },
        }))
        .into_response(),
        Ok(Err(reason)) => not_ready(&reason),
        Err(_) => not_ready("database check timed out"),
    }
}

fn not_ready(reason: &str) -> Response {
    tracing::warn!(reason, "not ready");
    AppError {
        retry_after: Some(crate::error::DATABASE_RETRY_AFTER_SECONDS),
        ..AppError::new(ErrorCode::Unavailable, "Service not ready")
    }
    .into_response()
}

pub async fn metrics(State(app): State<App>) -> Response {
    let m = &app.state.metrics;
    if let Some(pool) = pool_stats(&app.state.db) {
        m.db_pool_size.set(pool.0);
        m.db_pool_idle.set(pool.1);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        m.render(),
    )
        .into_response()
}

fn pool_stats(db: &crate::db::Db) -> Option<(i64, i64)> {
    use sea_orm::DatabaseBackend;
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            Some((i64::from(p.size()), p.num_idle() as i64))
        }
        DatabaseBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            Some((i64::from(p.size()), p.num_idle() as i64))
        }
        _ => None,
    }
}
