//! The response cache for catalogue reads, and HTTP caching of them (strong `ETag`, `304`,
//! `Cache-Control`, `Vary`).
//!
//! Catalogue answers depend on the catalogue and on the viewer's class only: anonymous visitors and
//! customers without medicinal access see one catalogue, customers with access another, admins a
//! third (inactive products and variants). An answer is stored under its class, the operation and
//! its variables, together with the catalogue generation it was computed at
//! ([`Freshness`]); an answer from an older generation is never served.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::actor::RequestCtx;
use crate::config::Config;
use crate::entities::user::Role;
use crate::error::AppResult;
use crate::infra::freshness::Freshness;
use crate::metrics::Metrics;
use crate::services::medicinal::gate;
use crate::state::AppState;

/// Root fields whose answers depend only on the catalogue and on the viewer's class.
const CATALOGUE_FIELDS: [&str; 6] = [
    "categories",
    "products",
    "product",
    "productVariants",
    "productReviews",
    "__typename",
];

/// Who is asking, as far as catalogue answers can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// Anonymous visitors and customers without medicinal access.
    Public,
    /// Customers with medicinal access (validated, or holding an approved document).
    Medicinal,
    Admin,
}

impl Viewer {
    fn tag(self) -> &'static str {
        match self {
            Viewer::Public => "public",
            Viewer::Medicinal => "medicinal",
            Viewer::Admin => "admin",
        }
    }
}

/// The viewer's class. Costs a statement only for a signed-in customer who is not marked validated
/// (the medicinal gate looks for an approved document; the request reuses the answer).
pub async fn viewer(st: &AppState, ctx: &RequestCtx) -> AppResult<Viewer> {
    if ctx.api_key().is_some() {
        // A key without `products:read` is refused before the cache is asked.
        return Ok(if ctx.sees_whole_catalogue() {
            Viewer::Admin
        } else {
            Viewer::Public
        });
    }
    Ok(match ctx.user() {
        None => Viewer::Public,
        Some(u) if u.role == Role::Admin => Viewer::Admin,
        Some(_) if gate::has_access(st, &st.db, ctx).await? => Viewer::Medicinal,
        Some(_) => Viewer::Public,
    })
}

/// Whether the operation `operation_name` selects (or the document's only operation) is a query
/// that reads nothing but the catalogue.
pub fn is_catalogue_read(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let operation = match operation_name {
        Some(name) => doc
            .operations
            .iter()
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name))
            .map(|(_, op)| op),
        None => {
            let mut ops = doc.operations.iter();
            match (ops.next(), ops.next()) {
                (Some((_, op)), None) => Some(op),
                _ => None,
            }
        }
    };
    let Some(op) = operation else { return false };
    op.node.ty == OperationType::Query && only_catalogue(doc, &op.node.selection_set.node, 0)
}

fn only_catalogue(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    // Fragments spread into fragments: a cycle does not validate, but do not recurse forever.
    if depth > 16 {
        return false;
    }
    set.items.iter().all(|item| match &item.node {
        Selection::Field(f) => CATALOGUE_FIELDS.contains(&f.node.name.node.as_str()),
        Selection::InlineFragment(f) => only_catalogue(doc, &f.node.selection_set.node, depth + 1),
        Selection::FragmentSpread(s) => doc
            .fragments
            .get(&s.node.fragment_name.node)
            .is_some_and(|f| only_catalogue(doc, &f.node.selection_set.node, depth + 1)),
    })
}

/// The query text with its ignored tokens (whitespace, commas, comments) collapsed: one space
/// between names and values, none next to punctuation. Strings are kept byte for byte.
pub fn normalize_query(query: &str) -> String {
    fn punctuation(c: char) -> bool {
        matches!(
            c,
            '{' | '}' | '(' | ')' | '[' | ']' | ':' | '!' | '$' | '=' | '@' | '|' | '&'
        )
    }
    let mut out = String::with_capacity(query.len());
    let mut chars = query.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => pending_space = true,
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' || n == '\r' {
                        break;
                    }
                }
                pending_space = true;
            }
            _ => {
                if pending_space
                    && !out.is_empty()
                    && !punctuation(c)
                    && !out.ends_with(punctuation)
                {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
                if c == '"' {
                    copy_string(&mut chars, &mut out);
                }
            }
        }
    }
    out
}

/// Copies the rest of a string whose opening quote was just copied (a block string when it
/// continues with two more quotes).
fn copy_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    if chars.peek() == Some(&'"') {
        chars.next();
        out.push('"');
        if chars.peek() != Some(&'"') {
            return; // the empty string ""
        }
        chars.next();
        out.push('"');
        // A block string: ends at an unescaped `"""`.
        let mut quotes = 0;
        while let Some(c) = chars.next() {
            out.push(c);
            match c {
                '"' => {
                    quotes += 1;
                    if quotes == 3 {
                        return;
                    }
                }
                '\\' => {
                    quotes = 0;
                    // `\"""` is an escaped triple quote.
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                _ => quotes = 0,
            }
        }
        return;
    }
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '"' | '\n' | '\r' => return,
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => {}
        }
    }
}

/// JSON with object keys sorted at every level: equal values, equal text.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// A stored answer: the body exactly as sent, and its strong entity tag.
pub struct Entry {
    generation: u64,
    pub body: Bytes,
    /// Hashed on the first GET that needs it (POST answers carry no tag).
    etag: std::sync::OnceLock<HeaderValue>,
}

impl Entry {
    fn new(generation: u64, body: Bytes) -> Self {
        Entry {
            generation,
            body,
            etag: std::sync::OnceLock::new(),
        }
    }

    /// The strong tag of the body: the first 128 bits of its SHA-256, in hex.
    pub fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(&self.body);
            let etag = format!("\"{}\"", hex::encode(&digest[..16]));
            HeaderValue::from_str(&etag).expect("hex is a valid header value")
        })
    }
}

#[derive(Clone)]
struct Weight;

/// What an entry costs: its key, its body and a fixed overhead for the entry and its tag.
impl quick_cache::Weighter<String, Arc<Entry>> for Weight {
    fn weight(&self, key: &String, entry: &Arc<Entry>) -> u64 {
        (key.len() + entry.body.len() + 128) as u64
    }
}

/// Which API a cached answer belongs to (the metrics' `surface` label).
#[derive(Clone, Copy, Debug)]
pub enum Surface {
    Rest,
    Graphql,
}

impl Surface {
    fn label(self) -> &'static str {
        match self {
            Surface::Rest => "rest",
            Surface::Graphql => "graphql",
        }
    }
}

#[derive(Clone)]
struct DocumentWeight;

impl quick_cache::Weighter<String, Option<Arc<str>>> for DocumentWeight {
    fn weight(&self, key: &String, normalized: &Option<Arc<str>>) -> u64 {
        (key.len() + normalized.as_ref().map_or(0, |n| n.len()) + 64) as u64
    }
}

/// The memory bound of the memo of GraphQL documents (see [`ResponseCache::catalogue_text`]).
const DOCUMENT_MEMO_BYTES: u64 = 2 * 1024 * 1024;

pub struct ResponseCache {
    store: Option<quick_cache::sync::Cache<String, Arc<Entry>, Weight>>,
    /// Per operation name and query text as sent: its normalized text when it is a catalogue
    /// read, `None` when it is not. Spares a hit parsing the document again.
    documents: quick_cache::sync::Cache<String, Option<Arc<str>>, DocumentWeight>,
    freshness: Arc<Freshness>,
    /// The generation the store holds answers of; older ones are dropped at the first new answer.
    held: AtomicU64,
    metrics: Metrics,
    s_maxage: u64,
}

impl ResponseCache {
    pub fn new(config: &Config, freshness: Arc<Freshness>, metrics: Metrics) -> Self {
        // Every series exists from the start (at 0), so dashboards and alerts see them at once.
        for surface in [Surface::Rest, Surface::Graphql] {
            metrics
                .response_cache_hits
                .with_label_values(&[surface.label()]);
            metrics
                .response_cache_misses
                .with_label_values(&[surface.label()]);
        }
        let max = config.http.response_cache_max_bytes;
        let store = config.http.response_cache.then(|| {
            // quick_cache sizes its tables from an estimate of the item count (~4 KiB answers).
            let items = (max / 4096).clamp(16, 1 << 20) as usize;
            quick_cache::sync::Cache::with_weighter(items, max, Weight)
        });
        ResponseCache {
            store,
            documents: quick_cache::sync::Cache::with_weighter(
                1024,
                DOCUMENT_MEMO_BYTES,
                DocumentWeight,
            ),
            freshness,
            held: AtomicU64::new(0),
            metrics,
            s_maxage: config.http.cache_s_maxage_seconds,
        }
    }

    pub fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// The identity of a GraphQL request's document when it reads nothing but the catalogue
    /// (`None` otherwise, or when it does not parse): the SHA-256 (first 128 bits, hex) of its
    /// normalized text, so that texts differing only in layout share answers while cache keys stay
    /// short. Remembered per operation name and text as sent.
    pub fn catalogue_text(&self, request: &mut async_graphql::Request) -> Option<Arc<str>> {
        let memo_key = format!(
            "{}\u{0}{}",
            request.operation_name.as_deref().unwrap_or(""),
            request.query
        );
        if let Some(known) = self.documents.get(&memo_key) {
            return known;
        }
        let operation = request.operation_name.clone();
        let verdict = match request.parsed_query() {
            Ok(doc) => is_catalogue_read(doc, operation.as_deref()),
            // Not remembered: execution reports the syntax error.
            Err(_) => return None,
        };
        let known = verdict.then(|| {
            let digest = Sha256::digest(normalize_query(&request.query).as_bytes());
            Arc::from(hex::encode(&digest[..16]))
        });
        self.documents.insert(memo_key, known.clone());
        known
    }

    fn get(&self, key: &str, generation: u64) -> Option<Arc<Entry>> {
        let store = self.store.as_ref()?;
        let entry = store.get(key)?;
        if entry.generation == generation {
            Some(entry)
        } else {
            store.remove(key);
            self.metrics.response_cache_bytes.set(store.weight() as i64);
            None
        }
    }

    fn put(&self, key: String, entry: Arc<Entry>) {
        let Some(store) = &self.store else { return };
        let generation = entry.generation;
        // Worth storing only while it is current (a write may have moved on meanwhile).
        if self.freshness.current() != generation {
            return;
        }
        if self.held.swap(generation, Ordering::SeqCst) != generation {
            store.clear();
        }
        store.insert(key, entry);
        self.metrics.response_cache_bytes.set(store.weight() as i64);
    }
}

/// How one catalogue read is cached: its key (without the viewer's class), its API, and whether
/// it is an HTTP-cacheable GET (ETag, 304, `Cache-Control`).
pub struct Cacheable {
    pub key: String,
    pub surface: Surface,
    pub get: bool,
}

/// Answers a catalogue read from the cache when it holds the current answer for the viewer's
/// class; otherwise runs `execute`, which yields the body of a successful answer (stored) or a
/// response to send as it is (errors: never stored). A GET whose `If-None-Match` names the
/// answer's tag gets `304 Not Modified` — from the cache, without executing anything.
pub async fn serve<F, Fut>(
    app: &super::App,
    ctx: &RequestCtx,
    request_headers: &HeaderMap,
    read: Cacheable,
    content_type: &'static str,
    execute: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, Response>>,
{
    let cache = &app.response_cache;
    let viewer = match viewer(&app.state, ctx).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let key = format!("{}|{}", viewer.tag(), read.key);
    let generation = cache.freshness.readable();
    let label = [read.surface.label()];
    let cached = generation.and_then(|g| cache.get(&key, g));
    let entry = match cached {
        Some(entry) => {
            cache
                .metrics
                .response_cache_hits
                .with_label_values(&label)
                .inc();
            entry
        }
        None => {
            if cache.enabled() {
                cache
                    .metrics
                    .response_cache_misses
                    .with_label_values(&label)
                    .inc();
            }
            let body = match execute().await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let entry = Arc::new(Entry::new(generation.unwrap_or(0), body));
            if generation.is_some() {
                cache.put(key, Arc::clone(&entry));
            }
            entry
        }
    };
    respond(cache, &entry, request_headers, read.get, content_type)
}

fn respond(
    cache: &ResponseCache,
    entry: &Entry,
    request_headers: &HeaderMap,
    get: bool,
    content_type: &'static str,
) -> Response {
    if !get {
        return (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            entry.body.clone(),
        )
            .into_response();
    }
    let personal = crate::http::carries_credentials(request_headers);
    let cache_control = if personal {
        HeaderValue::from_static("private, no-store")
    } else if cache.s_maxage > 0 {
        HeaderValue::from_str(&format!(
            "public, max-age=0, must-revalidate, s-maxage={}",
            cache.s_maxage
        ))
        .expect("a valid header value")
    } else {
        HeaderValue::from_static("public, max-age=0, must-revalidate")
    };
    let headers = [
        (header::ETAG, entry.etag().clone()),
        (header::CACHE_CONTROL, cache_control),
        (header::VARY, HeaderValue::from_static("Authorization")),
    ];
    if not_modified(request_headers, entry.etag()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mut res = (headers, entry.body.clone()).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// `If-None-Match` (weak comparison, as RFC 9110 asks for it): `*`, or a list naming the tag.
fn not_modified(request_headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let tag = etag.as_bytes();
    request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_keeps_meaning_and_strings() {
        let a = "query P($n: Int) {\n  products(pageSize: $n) { items { id, name } } # list\n}";
        let b = "query P($n:Int){products(pageSize:$n){items{id name}}}";
        assert_eq!(normalize_query(a), normalize_query(b));
        assert_eq!(normalize_query(b), b);
        // Whitespace inside strings is meaning, not layout.
        assert_ne!(
            normalize_query(r#"{products(q:"a  b"){total}}"#),
            normalize_query(r#"{products(q:"a b"){total}}"#)
        );
        assert_eq!(
            normalize_query(r#"{ products(q: "x, \"y\"  # not a comment") { total } }"#),
            r#"{products(q:"x, \"y\"  # not a comment"){total}}"#
        );
        assert_eq!(
            normalize_query("{ products(q: \"\"\"a  \\\"\"\" b\"\"\") { total } }"),
            "{products(q:\"\"\"a  \\\"\"\" b\"\"\"){total}}"
        );
        assert_eq!(normalize_query(r#"{ a(q: "") { b } }"#), r#"{a(q:""){b}}"#);
        // Names stay apart.
        assert_eq!(normalize_query("query  Q { a }"), "query Q{a}");
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a = serde_json::json!({"b": 1, "a": {"d": [1, {"f": 2, "e": 3}], "c": null}});
        let b = serde_json::json!({"a": {"c": null, "d": [1, {"e": 3, "f": 2}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&b),
            r#"{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}"#
        );
    }

    #[test]
    fn catalogue_reads_are_recognized() {
        let doc = |q: &str| async_graphql::parser::parse_query(q).expect("parses");
        assert!(is_catalogue_read(
            &doc("{ products { total } categories { total } }"),
            None
        ));
        assert!(is_catalogue_read(
            &doc("query A { product(id: 1) { id } } query B { me { id } }"),
            Some("A")
        ));
        assert!(!is_catalogue_read(
            &doc("query A { product(id: 1) { id } } query B { me { id } }"),
            Some("B")
        ));
        assert!(!is_catalogue_read(
            &doc("query A { product(id: 1) { id } } query B { me { id } }"),
            None
        ));
        assert!(!is_catalogue_read(
            &doc("{ products { total } me { id } }"),
            None
        ));
        assert!(!is_catalogue_read(
            &doc("{ ...F } fragment F on Query { cart { id } }"),
            None
        ));
        assert!(is_catalogue_read(
            &doc("{ ...F } fragment F on Query { products { total } }"),
            None
        ));
        assert!(!is_catalogue_read(
            &doc("mutation { deleteProduct(id: 1) }"),
            None
        ));
        assert!(!is_catalogue_read(&doc("{ exportProducts }"), None));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let tag = HeaderValue::from_static("\"abc\"");
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(v));
            h
        };
        assert!(not_modified(&with("\"abc\""), &tag));
        assert!(not_modified(&with("\"x\", W/\"abc\""), &tag));
        assert!(not_modified(&with("*"), &tag));
        assert!(!not_modified(&with("\"abcd\""), &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }
}
