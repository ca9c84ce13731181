//! `/graphql`: POST for any operation, GET for queries (or the GraphiQL page for browsers).

use async_graphql::parser::types::OperationType;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::App;
use crate::actor::RequestCtx;
use crate::error::AppError;
use crate::graphql;

pub async fn post(
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    req: Request,
) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let request = if content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/"))
    {
        read_multipart(content_type, req).await
    } else {
        read_json(req).await
    };
    match request {
        Ok(r) => respond(graphql::execute(&app.schema, &app.state, r, ctx).await),
        Err(e) => e.into_response(),
    }
}

async fn read_json(req: Request) -> Result<async_graphql::Request, AppError> {
    let body = axum::body::to_bytes(req.into_body(), super::JSON_BODY_LIMIT)
        .await
        .map_err(|_| AppError::too_large("body", "The request body is larger than 1 MB"))?;
    serde_json::from_slice(&body).map_err(|e| {
        AppError::invalid(
            "body",
            "invalid_json",
            format!("The body is not a GraphQL request: {e}"),
        )
    })
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
    let stream = axum::body::Body::new(limited)
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream).compat();
    let opts = async_graphql::http::MultipartOptions::default()
        .max_file_size(crate::services::files::MAX_UPLOAD_BYTES as usize)
        .max_num_files(4);
    let batch = async_graphql::http::receive_batch_body(content_type, reader, opts)
        .await
        .map_err(|e| match e {
            async_graphql::ParseRequestError::PayloadTooLarge => {
                AppError::too_large("file", "The upload is larger than 10 MB")
            }
            async_graphql::ParseRequestError::Io(io) if io.to_string().contains("length limit") => {
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
    query: String,
    operation_name: Option<String>,
    variables: Option<String>,
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
    let mut request = async_graphql::Request::new(params.query);
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
    // Mutations only over POST: a GET must be safe (no CSRF through links or image tags).
    let op_name = request.operation_name.clone();
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
    respond(graphql::execute(&app.schema, &app.state, request, ctx).await)
}

/// 200 with the GraphQL response, except 429 (+ `Retry-After`) when a rate limit refused it.
fn respond(response: async_graphql::Response) -> Response {
    let retry_after = response.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        match (ext.get("code"), ext.get("retryAfter")) {
            (Some(async_graphql::Value::String(c)), Some(async_graphql::Value::Number(n)))
                if c == "rate_limited" =>
            {
                n.as_u64()
            }
            _ => None,
        }
    });
    let body = serde_json::to_vec(&response).unwrap_or_default();
    let mut res = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(secs) = retry_after {
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
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
