//! Automatic persisted queries (Apollo's protocol): a client sends
//! `extensions.persistedQuery = {version: 1, sha256Hash}` without the query; the server answers
//! `PersistedQueryNotFound` the first time, the client sends the query with its hash once, and
//! from then on the short request (a GET a CDN can cache) is enough.
//!
//! Resolved here, before admission control and the response cache, which both need the text
//! (async-graphql's own extension resolves it inside execution, after them). The store is a
//! bounded LRU of the texts by their hash; a text is registered only when it matches its hash and
//! parses.

use std::sync::Arc;

use async_graphql::{ErrorExtensionValues, ErrorExtensions, ServerError, Value};
use sha2::{Digest, Sha256};

use crate::metrics::Metrics;

/// The message and code Apollo clients look for before retrying with the query.
pub const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";
pub const NOT_FOUND_CODE: &str = "PERSISTED_QUERY_NOT_FOUND";

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<str>> for Weight {
    fn weight(&self, key: &String, text: &Arc<str>) -> u64 {
        (key.len() + text.len() + 64) as u64
    }
}

pub struct PersistedQueries {
    store: quick_cache::sync::Cache<String, Arc<str>, Weight>,
    metrics: Metrics,
}

/// Whether a request asks for a persisted query (then its `query` may be absent).
pub fn requested(extensions: &async_graphql::Extensions) -> bool {
    extensions.0.contains_key("persistedQuery")
}

impl PersistedQueries {
    pub fn new(max_bytes: u64, metrics: Metrics) -> Self {
        for outcome in ["hit", "miss", "registered"] {
            metrics.persisted_queries.with_label_values(&[outcome]);
        }
        let items = (max_bytes / 1024).clamp(16, 1 << 20) as usize;
        PersistedQueries {
            store: quick_cache::sync::Cache::with_weighter(items, max_bytes, Weight),
            metrics,
        }
    }

    /// Fills in the query of a persisted-query request, or registers the query it carries.
    /// Requests without the extension pass untouched. The error is the GraphQL error to answer.
    pub fn resolve(&self, request: &mut async_graphql::Request) -> Result<(), ServerError> {
        let Some(pq) = request.extensions.0.get("persistedQuery") else {
            return Ok(());
        };
        let Value::Object(pq) = pq else {
            return Err(invalid(
                "extensions.persistedQuery",
                "invalid_type",
                "extensions.persistedQuery must be an object {version, sha256Hash}",
            ));
        };
        match pq.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            _ => {
                return Err(invalid(
                    "extensions.persistedQuery.version",
                    "unsupported",
                    "Unsupported persisted query version: the only version is 1",
                ))
            }
        }
        let hash = match pq.get("sha256Hash") {
            Some(Value::String(h))
                if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                h.clone()
            }
            _ => {
                return Err(invalid(
                    "extensions.persistedQuery.sha256Hash",
                    "invalid_format",
                    "sha256Hash must be the query's SHA-256 in lower-case hex (64 characters)",
                ))
            }
        };
        if request.query.is_empty() {
            return match self.store.get(&hash) {
                Some(text) => {
                    self.metrics
                        .persisted_queries
                        .with_label_values(&["hit"])
                        .inc();
                    request.query = text.to_string();
                    Ok(())
                }
                None => {
                    self.metrics
                        .persisted_queries
                        .with_label_values(&["miss"])
                        .inc();
                    let mut err = ServerError::new(NOT_FOUND_MESSAGE, None);
                    let mut ext = ErrorExtensionValues::default();
                    ext.set("code", NOT_FOUND_CODE);
                    err.extensions = Some(ext);
                    Err(err)
                }
            };
        }
        if hex::encode(Sha256::digest(request.query.as_bytes())) != hash {
            return Err(invalid(
                "extensions.persistedQuery.sha256Hash",
                "hash_mismatch",
                "provided sha does not match query",
            ));
        }
        // Only documents that parse are worth keeping (the parse is kept for execution).
        if request.parsed_query().is_ok() {
            self.store.insert(hash, Arc::from(request.query.as_str()));
            self.metrics
                .persisted_queries
                .with_label_values(&["registered"])
                .inc();
        }
        Ok(())
    }
}

fn invalid(field: &str, issue: &str, message: &str) -> ServerError {
    let e = crate::error::AppError::invalid(field, issue, message);
    let mut err = ServerError::new(message, None);
    err.extensions = e.extend().extensions;
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, hash: &str) -> async_graphql::Request {
        let ext: async_graphql::Extensions = serde_json::from_value(serde_json::json!({
            "persistedQuery": {"version": 1, "sha256Hash": hash}
        }))
        .expect("extensions");
        let mut r = async_graphql::Request::new(query);
        r.extensions = ext;
        r
    }

    #[test]
    fn miss_register_hit_and_bounds() {
        let store = PersistedQueries::new(4096, Metrics::new());
        let q = "{ products { total } }";
        let hash = hex::encode(Sha256::digest(q.as_bytes()));
        let miss = store.resolve(&mut request("", &hash)).unwrap_err();
        assert_eq!(miss.message, NOT_FOUND_MESSAGE);
        store.resolve(&mut request(q, &hash)).expect("registers");
        let mut hit = request("", &hash);
        store.resolve(&mut hit).expect("found");
        assert_eq!(hit.query, q);
        let wrong = store
            .resolve(&mut request("{ categories { total } }", &hash))
            .unwrap_err();
        assert_eq!(wrong.message, "provided sha does not match query");
        // Bounded: registering far more than 4 KiB of queries keeps the store under its bound.
        for i in 0..200 {
            let q = format!("{{ product(id: {i}) {{ id name description }} }}");
            let h = hex::encode(Sha256::digest(q.as_bytes()));
            store.resolve(&mut request(&q, &h)).expect("registers");
        }
        assert!(store.store.weight() <= 4096, "{}", store.store.weight());
        assert!(store.store.len() < 200);
    }
}
