//! The HTTP surface: middleware stack and the router (GraphQL, REST bridge, operations).

pub mod auth;
pub mod client_ip;
pub mod data_export;
pub mod drain;
pub mod errors;
pub mod files;
pub mod graphql;
pub mod media;
pub mod observe;
pub mod ops;
pub mod response_cache;
pub mod security;
pub mod trace;
pub mod upload;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_swagger_ui::SwaggerUi;

use std::collections::HashSet;
use std::sync::Arc;

use crate::graphql::documents::ParsedDocuments;
use crate::graphql::persisted::PersistedQueries;
use crate::graphql::AppSchema;
use crate::state::AppState;
use response_cache::ResponseCache;

/// The header an API key may travel in (else `Authorization: Bearer <key>`).
pub const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Whether a request carries credentials (a bearer token or an API key): its answer may be
/// personal or privileged, so no shared cache may keep it.
pub fn carries_credentials(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key(API_KEY)
}

/// JSON bodies above this are refused with 413.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// What every handler of the HTTP surface holds: the services' state, the schema, and the
/// surface's own caches (no service reads them).
#[derive(Clone)]
pub struct App {
    pub state: AppState,
    pub schema: AppSchema,
    /// Catalogue reads, answered without executing them again while the catalogue is unchanged.
    pub response_cache: Arc<ResponseCache>,
    /// Automatic persisted queries: document texts by their SHA-256.
    pub persisted_queries: Arc<PersistedQueries>,
    /// GraphQL documents parsed once, by their text.
    pub graphql_documents: Arc<ParsedDocuments>,
    /// The GraphQL operation names metrics count by name (the REST layer's; any other operation
    /// is `other`, keeping the label set bounded). Handed in by whoever assembles the app
    /// ([`crate::build_app`]), so neither GraphQL nor HTTP needs anything from the REST layer.
    pub operation_labels: Arc<HashSet<&'static str>>,
}

impl App {
    pub fn new(state: AppState, schema: AppSchema, operation_labels: HashSet<&'static str>) -> App {
        let config = &state.config;
        let response_cache = Arc::new(ResponseCache::new(
            config,
            Arc::clone(&state.catalogue),
            state.metrics.clone(),
        ));
        let persisted_queries = Arc::new(PersistedQueries::new(
            config.graphql.persisted_queries_max_bytes,
            state.metrics.clone(),
        ));
        App {
            state,
            schema,
            response_cache,
            persisted_queries,
            graphql_documents: Arc::new(ParsedDocuments::default()),
            operation_labels: Arc::new(operation_labels),
        }
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            API_KEY,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("idempotency-key"),
            trace::REQUEST_ID,
        ])
        .expose_headers([trace::REQUEST_ID, header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// The whole app: `api` (the REST layer's `/api` routes) and its OpenAPI document are handed in
/// by whoever assembles the app ([`crate::build_app`]), so this layer needs nothing from REST.
pub fn router(app: App, api: Router<App>, openapi: utoipa::openapi::OpenApi) -> Router {
    let st = app.state.clone();
    let routes = api
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route(
            "/graphiql/assets/graphiql.min.js",
            get(graphql::graphiql_js),
        )
        .route(
            "/graphiql/assets/graphiql.min.css",
            get(graphql::graphiql_css),
        )
        .route(
            "/graphiql/assets/react.production.min.js",
            get(graphql::react_js),
        )
        .route(
            "/graphiql/assets/react-dom.production.min.js",
            get(graphql::react_dom_js),
        )
        .route(
            "/webhooks/payments/webpay",
            get(webhooks::webpay_return).post(webhooks::webpay_return),
        )
        .route(
            "/webhooks/payments/flow/return",
            get(webhooks::flow_return).post(webhooks::flow_return),
        )
        .route(
            "/webhooks/payments/{provider}",
            axum::routing::post(webhooks::handle),
        )
        .route("/api/files/{id}", get(files::download))
        .route("/uploads/{key}", get(files::public))
        .route(
            "/api/me/data-exports/{id}/download",
            get(data_export::download),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .route_layer(from_fn(observe::route_label))
        .fallback(errors::not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(from_fn_with_state(st.clone(), auth::middleware))
        .layer(from_fn(errors::normalize))
        .layer(from_fn(security::cache_control))
        // Outside the normalizer, which rebuilds error responses (and would drop `Connection`).
        .layer(from_fn(drain::middleware));
    // Outside CORS and the error normalizer, so preflights and every error get the headers too.
    security::with_headers(
        routes.layer(cors(&st.config.http.cors_allowed_origins)),
        &st.config,
    )
    .layer(from_fn_with_state(st, observe::middleware))
    .layer(from_fn(trace::middleware))
    .with_state(app)
}
