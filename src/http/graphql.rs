//! `/graphql`: POST for any operation, GET for queries (or the GraphiQL page for browsers).

use async_graphql::parser::types::OperationType;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::{media, response_cache, App};
use crate::actor::RequestCtx;
use crate::error::AppError;
use crate::graphql;

pub async fn post(
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    req: Request,
) -> Response {
    let media = response_media(req.headers());
    let mut request = match read_request(&ctx, req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(refused) = resolve_persisted(&app, &ctx, &mut request) {
        return respond_as(refused, media);
    }
    run(&app, ctx, request, media, None).await
}

/// Fills in a persisted query's text from the store (or registers it); the refusal to send
/// instead, if any.
fn resolve_persisted(
    app: &App,
    ctx: &RequestCtx,
    request: &mut async_graphql::Request,
) -> Option<async_graphql::Response> {
    let mut err = app.persisted_queries.resolve(request).err()?;
    err.extensions
        .get_or_insert_with(Default::default)
        .set("traceId", ctx.trace_id.clone());
    Some(async_graphql::Response::from_errors(vec![err]))
}

/// Executes the request; a catalogue read goes through the response cache (and, sent by GET —
/// `get_headers` —, gets its ETag and HTTP caching headers).
async fn run(
    app: &App,
    ctx: RequestCtx,
    mut request: async_graphql::Request,
    media: ResponseMedia,
    get_headers: Option<&HeaderMap>,
) -> Response {
    // An API key's request is never answered from the cache: its scopes are checked as it runs.
    let cached = match ctx.api_key() {
        Some(_) => None,
        None => catalogue_key(app, &mut request),
    };
    let Some(key) = cached else {
        app.graphql_documents.prepare(&mut request);
        return respond_as(
            graphql::execute(&app.schema, &app.state, &app.operation_labels, request, ctx).await,
            media,
        );
    };
    let read = response_cache::Cacheable {
        key,
        surface: response_cache::Surface::Graphql,
        get: get_headers.is_some(),
    };
    let content_type = match media {
        ResponseMedia::Json => "application/json",
        ResponseMedia::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
    };
    let no_headers = HeaderMap::new();
    let headers = get_headers.unwrap_or(&no_headers);
    let rctx = ctx.clone();
    response_cache::serve(app, &ctx, headers, read, content_type, || async move {
        app.graphql_documents.prepare(&mut request);
        let response = graphql::execute(
            &app.schema,
            &app.state,
            &app.operation_labels,
            request,
            rctx,
        )
        .await;
        if !response.errors.is_empty() {
            return Err(respond_as(response, media));
        }
        serde_json::to_vec(&response)
            .map(axum::body::Bytes::from)
            .map_err(|e| AppError::internal(e).into_response())
    })
    .await
}

/// The response cache key of a request that reads nothing but the catalogue: its operation, its
/// normalized text and its variables (the viewer's class is added by the cache).
fn catalogue_key(app: &App, request: &mut async_graphql::Request) -> Option<String> {
    let text = app.response_cache.catalogue_text(request)?;
    let variables = serde_json::to_value(&request.variables).ok()?;
    Some(format!(
        "graphql|{}|{}|{}",
        request.operation_name.as_deref().unwrap_or(""),
        text,
        response_cache::canonical_json(&variables)
    ))
}

/// JSON, or the GraphQL multipart request (uploads) from a signed-in user. Every upload mutation
/// needs a bearer token, and a web page may send `multipart/form-data` cross-origin without a
/// preflight: refusing it anonymously (401, before the body is read) keeps `/graphql` out of
/// reach of such cross-site requests, together with the 415 for `text/plain` and forms.
async fn read_request(ctx: &RequestCtx, req: Request) -> Result<async_graphql::Request, AppError> {
    const ACCEPTED: [&str; 2] = ["application/json", "multipart/form-data"];
    let media = media::check(req.headers(), &ACCEPTED)?;
    match media {
        Some(m) if m.essence_str() == mime::MULTIPART_FORM_DATA.essence_str() => {
            if ctx.user().is_none() && ctx.api_key().is_none() {
                return Err(AppError::unauthorized(ctx.auth_problem.unwrap_or(
                    "Multipart requests (uploads) need a bearer access token",
                )));
            }
            read_multipart(Some(m.to_string()), req).await
        }
        Some(_) => read_json(req).await,
        None => {
            let body = read_limited(req).await?;
            if !body.iter().all(u8::is_ascii_whitespace) {
                return Err(media::refused(None, &ACCEPTED[..1]));
            }
            parse_json(&body)
        }
    }
}

async fn read_limited(req: Request) -> Result<axum::body::Bytes, AppError> {
    axum::body::to_bytes(req.into_body(), super::JSON_BODY_LIMIT)
        .await
        .map_err(|_| AppError::too_large("body", "The request body is larger than 1 MB"))
}

async fn read_json(req: Request) -> Result<async_graphql::Request, AppError> {
    parse_json(&read_limited(req).await?)
}

/// A GraphQL-over-HTTP request: one JSON object with a non-empty `query` string (absent for a
/// persisted query sent by its hash), and
/// `operationName` (string), `variables` and `extensions` (objects), each optional or null.
/// Checked on the JSON value first because async-graphql's own deserializer also takes an array
/// (`[]` would be an empty document) and other shapes no client means.
fn parse_json(body: &[u8]) -> Result<async_graphql::Request, AppError> {
    use serde_json::Value;
    let not_a_request = |e: &dyn std::fmt::Display| {
        AppError::invalid(
            "body",
            "invalid_json",
            format!("The body is not a GraphQL request: {e}"),
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| not_a_request(&e))?;
    let fields =
        match &value {
            Value::Object(fields) => fields,
            Value::Array(_) => {
                return Err(AppError::invalid(
                    "body",
                    "batch_not_supported",
                    "Send one GraphQL request per HTTP request: batches are not supported",
                ))
            }
            _ => return Err(AppError::invalid(
                "body",
                "invalid_type",
                "The body must be a JSON object {query, operationName?, variables?, extensions?}",
            )),
        };
    // A persisted-query request may leave the query out (it is then looked up by its hash).
    let persisted = fields
        .get("extensions")
        .and_then(|e| e.get("persistedQuery"))
        .is_some();
    match fields.get("query") {
        Some(Value::String(q)) if !q.is_empty() => {}
        None | Some(Value::Null) if persisted => {}
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(AppError::invalid(
                "query",
                "required",
                "A GraphQL request needs a non-empty 'query' string",
            ))
        }
        Some(_) => {
            return Err(AppError::invalid(
                "query",
                "invalid_type",
                "'query' must be a string",
            ))
        }
    }
    for (name, expect_object) in [
        ("operationName", false),
        ("variables", true),
        ("extensions", true),
    ] {
        let ok = match fields.get(name) {
            None | Some(Value::Null) => true,
            Some(Value::String(_)) => !expect_object,
            Some(Value::Object(_)) => expect_object,
            Some(_) => false,
        };
        if !ok {
            let kind = if expect_object {
                "an object"
            } else {
                "a string"
            };
            return Err(AppError::invalid(
                name,
                "invalid_type",
                format!("'{name}' must be {kind} or null"),
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| not_a_request(&e))
}

/// The GraphQL multipart request spec (operations + map + files); files are spooled to disk.
async fn read_multipart(
    content_type: Option<String>,
    req: Request,
) -> Result<async_graphql::Request, AppError> {
    use futures_util::TryStreamExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    let limited =
        http_body_util::Limited::new(req.into_body(), super::upload::MULTIPART_BODY_LIMIT);
    // The multipart parser reports a failed read as "invalid multipart data" (or as I/O, depending
    // on where the limit falls in a chunk): remember that it was the size limit, for a 413.
    let over_limit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&over_limit);
    let stream = axum::body::Body::new(limited)
        .into_data_stream()
        .map_err(move |e| {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            std::io::Error::other(inner)
        });
    let reader = tokio_util::io::StreamReader::new(stream).compat();
    let opts = async_graphql::http::MultipartOptions::default()
        .max_file_size(crate::services::platform::files::MAX_UPLOAD_BYTES as usize)
        .max_num_files(4);
    let batch = async_graphql::http::receive_batch_body(content_type, reader, opts)
        .await
        .map_err(|e| match e {
            async_graphql::ParseRequestError::PayloadTooLarge => {
                AppError::too_large("file", "The upload is larger than 10 MB")
            }
            _ if over_limit.load(std::sync::atomic::Ordering::Relaxed) => {
                AppError::too_large("body", "The request body is too large")
            }
            other => AppError::invalid("body", "invalid_multipart", other.to_string()),
        })?;
    batch
        .into_single()
        .map_err(|e| AppError::invalid("body", "batch_not_supported", e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

pub async fn get(
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let raw = raw.unwrap_or_default();
    if raw.is_empty() && wants_html {
        return graphiql();
    }
    let params: GetParams = match serde_urlencoded::from_str(&raw) {
        Ok(p) => p,
        Err(_) => {
            return AppError::invalid(
                "query",
                "required",
                "GET /graphql needs a 'query' parameter",
            )
            .into_response()
        }
    };
    let mut request = async_graphql::Request::new(params.query.unwrap_or_default());
    if let Some(op) = params.operation_name {
        request = request.operation_name(op);
    }
    if let Some(v) = params.variables.filter(|v| !v.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(&v) {
            Ok(json) => request = request.variables(async_graphql::Variables::from_json(json)),
            Err(_) => {
                return AppError::invalid("variables", "invalid_json", "variables must be JSON")
                    .into_response()
            }
        }
    }
    // Extensions are optional hints (GraphQL over HTTP): one that is not a JSON object is ignored.
    if let Some(ext) = params
        .extensions
        .and_then(|e| serde_json::from_str::<serde_json::Value>(&e).ok())
        .filter(serde_json::Value::is_object)
        .and_then(|json| serde_json::from_value(json).ok())
    {
        request.extensions = ext;
    }
    if request.query.is_empty() && !crate::graphql::persisted::requested(&request.extensions) {
        return AppError::invalid(
            "query",
            "required",
            "GET /graphql needs a 'query' parameter",
        )
        .into_response();
    }
    if let Some(refused) = resolve_persisted(&app, &ctx, &mut request) {
        return respond(refused);
    }
    // Mutations only over POST: a GET must be safe (no CSRF through links or image tags). A
    // known catalogue read is a query (and its document need not be parsed again).
    if app.response_cache.catalogue_text(&mut request).is_some() {
        return run(&app, ctx, request, ResponseMedia::Json, Some(&headers)).await;
    }
    let op_name = request.operation_name.clone();
    app.graphql_documents.prepare(&mut request);
    match request.parsed_query() {
        Ok(doc) => {
            let is_mutation = doc.operations.iter().any(|(name, op)| {
                op.node.ty != OperationType::Query
                    && (op_name.is_none() || name.map(|n| n.as_str()) == op_name.as_deref())
            });
            if is_mutation {
                return AppError::new(
                    crate::error::ErrorCode::MethodNotAllowed,
                    "Mutations must be sent with POST",
                )
                .into_response();
            }
        }
        Err(e) => return AppError::invalid("query", "invalid_syntax", e.message).into_response(),
    }
    run(&app, ctx, request, ResponseMedia::Json, Some(&headers)).await
}

/// The two media types of GraphQL responses (GraphQL over HTTP).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ResponseMedia {
    /// `application/json`: every well-formed request answers 200.
    Json,
    /// `application/graphql-response+json`: request errors (nothing executed, no `data`) answer 400.
    GraphqlResponse,
}

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// `application/graphql-response+json` when the client's `Accept` names it at least as highly as
/// `application/json`; otherwise (absent, `*/*`, JSON preferred) `application/json`.
pub fn response_media(headers: &HeaderMap) -> ResponseMedia {
    let mut graphql_q: f32 = 0.0;
    let mut json_q: f32 = 0.0;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let Ok(m) = range.trim().parse::<mime::Mime>() else {
                continue;
            };
            let q = m
                .get_param("q")
                .and_then(|q| q.as_str().parse::<f32>().ok())
                .unwrap_or(1.0);
            match m.essence_str() {
                GRAPHQL_RESPONSE_JSON => graphql_q = graphql_q.max(q),
                "application/json" | "application/*" | "*/*" => json_q = json_q.max(q),
                _ => {}
            }
        }
    }
    if graphql_q > 0.0 && graphql_q >= json_q {
        ResponseMedia::GraphqlResponse
    } else {
        ResponseMedia::Json
    }
}

/// 200 with the GraphQL response, except 429 (+ `Retry-After`) when a rate limit refused it and
/// 503 (+ `Retry-After`) when the database could not be reached.
fn respond(response: async_graphql::Response) -> Response {
    respond_as(response, ResponseMedia::Json)
}

/// The response in the negotiated media type. With `application/graphql-response+json`, a request
/// error (the document did not parse or validate: no `data`, no error with a path) is 400 and
/// carries no `data` entry, as GraphQL over HTTP requires.
fn respond_as(response: async_graphql::Response, media: ResponseMedia) -> Response {
    let retry_after = response.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        match (ext.get("code"), ext.get("retryAfter")) {
            (Some(async_graphql::Value::String(c)), Some(async_graphql::Value::Number(n))) => {
                let status = match c.as_str() {
                    "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
                    "service_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                    _ => return None,
                };
                Some((status, n.as_u64()?))
            }
            _ => None,
        }
    });
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let (status, content_type, body) = match media {
        ResponseMedia::Json => (
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&response),
        ),
        ResponseMedia::GraphqlResponse => {
            let status = if request_error {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let body = serde_json::to_value(&response).and_then(|mut v| {
                if request_error {
                    if let Some(m) = v.as_object_mut() {
                        m.remove("data");
                    }
                }
                serde_json::to_vec(&v)
            });
            (status, GRAPHQL_RESPONSE_JSON, body)
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return AppError::internal(e).into_response(),
    };
    let mut res = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    if let Some((status, secs)) = retry_after {
        *res.status_mut() = status;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    res
}

fn graphiql() -> Response {
    Html(include_str!("graphiql.html")).into_response()
}

macro_rules! asset {
    ($name:ident, $file:literal, $ct:literal) => {
        pub async fn $name() -> Response {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static($ct)),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=86400"),
                    ),
                ],
                include_bytes!(concat!("../../assets/graphiql/", $file)).as_slice(),
            )
                .into_response()
        }
    };
}

asset!(graphiql_js, "graphiql.min.js", "application/javascript");
asset!(graphiql_css, "graphiql.min.css", "text/css");
asset!(
    react_js,
    "react.production.min.js",
    "application/javascript"
);
asset!(
    react_dom_js,
    "react-dom.production.min.js",
    "application/javascript"
);
