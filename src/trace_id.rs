//! The current request's trace id, for errors and logs anywhere below the HTTP layer (which sets
//! it per request from `X-Request-Id`, see `http::trace`).

use std::future::Future;

tokio::task_local! {
    static TRACE_ID: String;
}

/// Runs `fut` with `id` as its trace id.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    TRACE_ID.scope(id, fut).await
}

/// The current request's trace id ("-" outside a request).
pub fn current_trace_id() -> String {
    TRACE_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_string())
}

/// Calls `f` with the current request's trace id ("-" outside a request), without copying it.
pub fn with_trace_id<R>(f: impl FnOnce(&str) -> R) -> R {
    let mut f = Some(f);
    match TRACE_ID.try_with(|id| (f.take().expect("called once"))(id)) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called"))("-"),
    }
}
