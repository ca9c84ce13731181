//! Lingering reads, so that every client can read an early answer.
//!
//! When a handler answers without consuming the whole request body (413 past a size limit, 401
//! before an upload is read, 415), hyper stops reading and closes the connection. A client that
//! writes its whole request before reading (Python's urllib and requests, many mobile stacks) then
//! hits a broken pipe, and the reset discards the answer it never read. So the body is wrapped,
//! and whatever the handler left unread is read and discarded here before the response leaves,
//! within a byte budget (twice the route family's limit) and a time budget. Past either, or when
//! the declared length is already beyond the budget, the response says `Connection: close`.
//! Clients that sent `Expect: 100-continue` wait for the server's word before sending the body,
//! so their bodies are not drained.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

use super::upload::MULTIPART_BODY_LIMIT;
use super::JSON_BODY_LIMIT;

/// The longest a response waits for the rest of an unread body.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How many body bytes (read by the handler and drained here together) a request may send before
/// the connection is closed instead: twice the largest body its kind of route accepts.
fn byte_budget(headers: &HeaderMap) -> u64 {
    let multipart = super::media::media_type(headers)
        .is_some_and(|m| m.essence_str() == mime::MULTIPART_FORM_DATA.essence_str());
    let limit = if multipart {
        MULTIPART_BODY_LIMIT
    } else {
        JSON_BODY_LIMIT
    };
    2 * limit as u64
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// The request body, shared between the handler (through [`Tracked`]) and the middleware, which
/// takes over what the handler dropped.
struct Shared {
    body: Mutex<Body>,
    read: AtomicU64,
    finished: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Body> {
        // Polling a body does not panic while holding the lock; recover the body if it ever did.
        self.body.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Tracked(Arc<Shared>);

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let shared = &self.0;
        let polled = Pin::new(&mut *shared.lock()).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    shared.read.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            // A read error means the client is gone: nothing left to drain.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                shared.finished.store(true, Ordering::Relaxed)
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0.finished.load(Ordering::Relaxed) || self.0.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().size_hint()
    }
}

/// Reads and discards up to `budget` more bytes; true when the body ended within it.
async fn discard(body: &mut Body, mut budget: u64) -> bool {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return false };
        if let Some(data) = frame.data_ref() {
            let n = data.len() as u64;
            if n > budget {
                return false;
            }
            budget -= n;
        }
    }
    true
}

pub async fn middleware(req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let budget = byte_budget(req.headers());
    let declared = declared_length(req.headers());
    let skip = expects_continue(req.headers()) || declared.is_some_and(|n| n > budget);
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Shared {
        body: Mutex::new(body),
        read: AtomicU64::new(0),
        finished: AtomicBool::new(false),
    });
    let mut res = next
        .run(Request::from_parts(
            parts,
            Body::new(Tracked(Arc::clone(&shared))),
        ))
        .await;
    if shared.finished.load(Ordering::Relaxed) {
        return res;
    }
    let mut rest = std::mem::replace(&mut *shared.lock(), Body::empty());
    if rest.is_end_stream() {
        return res;
    }
    let drained = !skip && {
        let left = budget.saturating_sub(shared.read.load(Ordering::Relaxed));
        tokio::time::timeout(DRAIN_TIMEOUT, discard(&mut rest, left))
            .await
            .unwrap_or(false)
    };
    if !drained {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}
