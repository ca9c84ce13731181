//! Outbound calls shared by the provider drivers: reading an answer (JSON on success, the
//! provider's error message otherwise) and retrying idempotent calls with backoff.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{AppError, AppResult};

/// Attempts of an idempotent call (a status lookup): the first and two retries.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Reads a provider answer: 2xx JSON as `T`; otherwise a `provider_error` carrying the status
/// and the provider's message (found by `message_of` in its error body), logged, never shown.
pub async fn read<T: for<'de> Deserialize<'de>>(
    provider: &str,
    res: reqwest::Response,
    message_of: fn(&Value) -> Option<String>,
) -> AppResult<T> {
    let status = res.status();
    let body = res
        .text()
        .await
        .map_err(|e| AppError::provider(provider, e))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| message_of(&v))
            .unwrap_or_else(|| body.chars().take(200).collect());
        return Err(AppError::provider(
            provider,
            format!("HTTP {status}: {message}"),
        ));
    }
    serde_json::from_str(&body)
        .map_err(|e| AppError::provider(provider, format!("unreadable answer: {e}")))
}

/// Sends a non-idempotent request once (a creation, a commit, a refund) and reads its answer.
pub async fn call_once<T: for<'de> Deserialize<'de>>(
    provider: &str,
    request: reqwest::RequestBuilder,
    message_of: fn(&Value) -> Option<String>,
) -> AppResult<T> {
    read(provider, send_once(provider, request).await?, message_of).await
}

/// Sends a non-idempotent request once (a creation, a commit, a refund).
async fn send_once(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> AppResult<reqwest::Response> {
    request
        .send()
        .await
        .map_err(|e| AppError::provider(provider, e))
}

/// Sends an idempotent request, retrying transport errors and 5xx answers with exponential
/// backoff. `build` makes a fresh request for each attempt.
pub async fn send_idempotent(
    provider: &str,
    build: impl Fn() -> AppResult<reqwest::RequestBuilder>,
) -> AppResult<reqwest::Response> {
    let mut delay = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        match build()?.send().await {
            Ok(res) if res.status().is_server_error() => last = format!("HTTP {}", res.status()),
            Ok(res) => return Ok(res),
            Err(e) => last = e.to_string(),
        }
    }
    Err(AppError::provider(provider, last))
}
