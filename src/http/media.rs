//! Request media types. Only JSON (and, where a route says so, multipart uploads or CSV) is read:
//! `text/plain`, `application/x-www-form-urlencoded` and `multipart/form-data` are the types a web
//! page may send cross-origin without a CORS preflight, so accepting JSON under them would let any
//! page submit requests on a visitor's behalf.

use axum::http::{header, HeaderMap};
use mime::Mime;

use crate::error::AppError;

/// The request's `Content-Type`, parsed (`None` when absent or unparseable; see [`check`]).
pub fn media_type(headers: &HeaderMap) -> Option<Mime> {
    headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Whether a `Content-Type` header is present at all.
pub fn has_content_type(headers: &HeaderMap) -> bool {
    headers.contains_key(header::CONTENT_TYPE)
}

/// Whether the request declares `multipart/form-data`.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| m.essence_str() == mime::MULTIPART_FORM_DATA.essence_str())
}

/// The request's media type when it is one of `accepted` (compared without parameters, so
/// `application/json; charset=utf-8` is JSON); `Ok(None)` when no `Content-Type` was sent (the
/// caller then accepts only an empty body); 415 `unsupported_media_type` otherwise.
pub fn check(headers: &HeaderMap, accepted: &[&str]) -> Result<Option<Mime>, AppError> {
    if !has_content_type(headers) {
        return Ok(None);
    }
    match media_type(headers) {
        Some(m) if accepted.contains(&m.essence_str()) => Ok(Some(m)),
        other => Err(refused(other.as_ref().map(Mime::essence_str), accepted)),
    }
}

/// The 415 for a body sent as `got` (or without a type) where `accepted` are expected.
pub fn refused(got: Option<&str>, accepted: &[&str]) -> AppError {
    let expected = accepted.join(" or ");
    match got {
        Some(got) => {
            AppError::unsupported_media_type(format!("Send the body as {expected}, not {got}"))
        }
        None => AppError::unsupported_media_type(format!(
            "Send the body as {expected} (Content-Type missing or malformed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn parameters_and_case_do_not_matter() {
        let json = ["application/json"];
        assert!(check(&headers("application/json; charset=utf-8"), &json).is_ok());
        assert!(check(&headers("Application/JSON"), &json).is_ok());
        assert!(check(&HeaderMap::new(), &json).unwrap().is_none());
    }

    #[test]
    fn simple_request_types_are_refused() {
        let json = ["application/json"];
        for ct in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "not a media type",
        ] {
            let e = check(&headers(ct), &json).unwrap_err();
            assert_eq!(e.code.as_str(), "unsupported_media_type", "{ct}");
            assert_eq!(e.status().as_u16(), 415, "{ct}");
        }
    }
}
