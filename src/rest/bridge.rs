//! Executes a REST row's GraphQL operation and maps the outcome to the REST contract.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Variables;
use axum::extract::{FromRequest, Multipart, RawPathParams, RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::{routes, Access, RestRoute, UploadSpec};
use crate::actor::RequestCtx;
use crate::error::{AppError, AppResult};
use crate::graphql;
use crate::http::{media, response_cache, App};

/// Each operation document, parsed once.
static PARSED: LazyLock<HashMap<&'static str, ExecutableDocument>> = LazyLock::new(|| {
    routes()
        .iter()
        .filter_map(|r| {
            async_graphql::parser::parse_query(r.document)
                .ok()
                .map(|doc| (r.document, doc))
        })
        .collect()
});

/// The GET rows whose operation reads nothing but the catalogue: answered through the response
/// cache, with an ETag and HTTP caching headers.
static CATALOGUE_READS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    routes()
        .iter()
        .filter(|r| r.method == Method::GET)
        .filter(|r| {
            PARSED
                .get(r.document)
                .is_some_and(|doc| response_cache::is_catalogue_read(doc, Some(r.operation)))
        })
        .map(|r| r.operation)
        .collect()
});

/// Whether a row is answered through the response cache.
pub fn is_catalogue_read(route: &RestRoute) -> bool {
    CATALOGUE_READS.contains(route.operation)
}

pub async fn handle(
    route: &'static RestRoute,
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    params: RawPathParams,
    RawQuery(raw_query): RawQuery,
    req: Request,
) -> Response {
    match run(route, &app, ctx, &params, raw_query.as_deref(), req).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

/// The row's declared access, enforced before anything is read from the request: callers who may
/// not use a route learn nothing about its input (401 / 403 come before 415 and 400). The GraphQL
/// guards and the services check again.
fn authorize(route: &RestRoute, ctx: &RequestCtx) -> AppResult<()> {
    if let Some(key) = ctx.api_key() {
        // A key reaches a row when its scopes open the row's operation, whatever its access.
        return match PARSED.get(route.document) {
            Some(doc) => graphql::scopes::admit_key(doc, key),
            None => Err(crate::actor::key_refused()),
        };
    }
    match route.access {
        Access::Public => Ok(()),
        Access::Customer => ctx.require_user().map(|_| ()),
        Access::Admin => ctx.require_admin().map(|_| ()),
    }
}

/// The media types a row reads its body in: its body's (JSON or CSV), multipart where it takes an
/// upload. Rows without a body ignore it, and take JSON for clients that label every request so.
fn accepted_media_types(route: &RestRoute) -> Vec<&'static str> {
    let mut accepted = Vec::new();
    if let Some(b) = &route.body {
        accepted.push(b.content_type);
    }
    if route.upload.is_some() {
        accepted.push(mime::MULTIPART_FORM_DATA.essence_str());
    }
    if accepted.is_empty() {
        accepted.push(mime::APPLICATION_JSON.essence_str());
    }
    accepted
}

/// Reads a JSON (or CSV) body up to the JSON limit; more is 413.
async fn read_body(req: Request) -> AppResult<axum::body::Bytes> {
    axum::body::to_bytes(req.into_body(), crate::http::JSON_BODY_LIMIT)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                AppError::too_large("body", "The request body is larger than 1 MB")
            } else {
                AppError::invalid("body", "unreadable", "The request body could not be read")
            }
        })
}

/// A multipart request: the file part (streamed to disk), and the body from a JSON part or from
/// the remaining text parts.
async fn read_multipart(
    spec: &UploadSpec,
    req: Request,
) -> AppResult<(Option<async_graphql::UploadValue>, Option<Vec<u8>>)> {
    use crate::http::upload::{multipart_error, spool};
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| AppError::invalid("body", "invalid_multipart", e.body_text()))?;
    let mut file = None;
    let mut json_text = None;
    let mut fields = serde_json::Map::new();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == spec.file_field {
            if file.is_some() {
                return Err(AppError::invalid(
                    spec.file_field,
                    "duplicate",
                    "Send one file per request",
                ));
            }
            file = Some(spool(field).await?);
        } else if Some(name.as_str()) == spec.json_field {
            json_text = Some(field.text().await.map_err(multipart_error)?);
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            fields.insert(name, serde_json::Value::String(text));
        }
    }
    if file.is_none() && spec.multipart_only {
        return Err(AppError::invalid(
            spec.file_field,
            "required",
            format!("A '{}' file part is required", spec.file_field),
        ));
    }
    let body = match json_text {
        Some(t) => Some(t.into_bytes()),
        None if !fields.is_empty() => {
            Some(serde_json::to_vec(&fields).map_err(AppError::internal)?)
        }
        None => None,
    };
    Ok((file, body))
}

fn variables(
    route: &RestRoute,
    params: &RawPathParams,
    raw_query: Option<&str>,
    body: &[u8],
) -> AppResult<serde_json::Map<String, serde_json::Value>> {
    let mut vars = serde_json::Map::new();
    for (name, value) in params.iter() {
        let id: i64 = value.parse().map_err(|_| {
            AppError::invalid(
                name,
                "invalid_type",
                format!("'{name}' must be an integer id"),
            )
        })?;
        vars.insert(name.to_string(), id.into());
    }
    if let Some(q) = &route.query {
        vars.extend((q.parse)(raw_query.unwrap_or(""))?);
    }
    if let Some(b) = &route.body {
        if body.iter().all(u8::is_ascii_whitespace) {
            if !b.optional {
                let kind = if b.content_type == "application/json" {
                    "JSON"
                } else {
                    b.content_type
                };
                return Err(AppError::invalid(
                    "body",
                    "required",
                    format!("A {kind} body is required"),
                ));
            }
        } else {
            vars.insert(b.var.to_string(), (b.parse)(body)?);
        }
    }
    Ok(vars)
}

async fn run(
    route: &'static RestRoute,
    app: &App,
    ctx: RequestCtx,
    params: &RawPathParams,
    raw_query: Option<&str>,
    req: Request,
) -> AppResult<Response> {
    authorize(route, &ctx)?;
    if is_catalogue_read(route) {
        let vars = variables(route, params, raw_query, &[])?;
        let read = response_cache::Cacheable {
            key: format!(
                "rest|{}|{}",
                route.operation,
                response_cache::canonical_json(&serde_json::Value::Object(vars.clone()))
            ),
            surface: response_cache::Surface::Rest,
            get: true,
        };
        let headers = req.headers().clone();
        let rctx = ctx.clone();
        return Ok(response_cache::serve(
            app,
            &ctx,
            &headers,
            read,
            "application/json",
            || async move {
                let value = execute(route, app, rctx, vars, None)
                    .await
                    .map_err(IntoResponse::into_response)?;
                serde_json::to_vec(&value)
                    .map(axum::body::Bytes::from)
                    .map_err(|e| AppError::internal(e).into_response())
            },
        )
        .await);
    }
    // A GET has no body to read (nor a media type to check); whatever was sent is drained unread.
    let (upload, body) = if route.method == Method::GET {
        (None, Vec::new())
    } else {
        let accepted = accepted_media_types(route);
        let media = media::check(req.headers(), &accepted)?;
        let multipart = media
            .as_ref()
            .is_some_and(|m| m.essence_str() == mime::MULTIPART_FORM_DATA.essence_str());
        match route.upload {
            Some(spec) if multipart => {
                let (file, body) = read_multipart(&spec, req).await?;
                (file.map(|f| (spec.var, f)), body.unwrap_or_default())
            }
            Some(spec) if spec.multipart_only => {
                return Err(AppError::invalid(
                    spec.file_field,
                    "required",
                    format!(
                        "Send multipart/form-data with a '{}' file part",
                        spec.file_field
                    ),
                ));
            }
            _ => {
                let body = read_body(req).await?.to_vec();
                if media.is_none() && !body.iter().all(u8::is_ascii_whitespace) {
                    return Err(media::refused(None, &accepted));
                }
                (None, body)
            }
        }
    };
    let vars = variables(route, params, raw_query, &body)?;
    let value = execute(route, app, ctx, vars, upload).await?;
    if route.success == StatusCode::NO_CONTENT {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if let Some(file) = route.raw_response {
        let text = match value {
            async_graphql::Value::String(s) => s,
            _ => {
                return Err(AppError::internal(format!(
                    "{} did not return text",
                    route.operation
                )))
            }
        };
        let body = if file.base64 {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(AppError::internal)?
        } else {
            text.into_bytes()
        };
        let mut filename = file.filename.to_string();
        for (name, value) in params.iter() {
            filename = filename.replace(&format!("{{{name}}}"), value);
        }
        return Ok((
            route.success,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(file.content_type),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                        .map_err(AppError::internal)?,
                ),
                // `nosniff` comes from the security-header layer, like every response's.
                // Downloads hold customers' or the store's data: never cached by shared caches.
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
            ],
            body,
        )
            .into_response());
    }
    let bytes = serde_json::to_vec(&value).map_err(AppError::internal)?;
    Ok((
        route.success,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}

/// Runs the row's operation with its variables (and upload) and returns the row's field.
async fn execute(
    route: &'static RestRoute,
    app: &App,
    ctx: RequestCtx,
    mut vars: serde_json::Map<String, serde_json::Value>,
    upload: Option<(&'static str, async_graphql::UploadValue)>,
) -> AppResult<async_graphql::Value> {
    if let Some((var, _)) = &upload {
        vars.insert(var.to_string(), serde_json::Value::Null);
    }
    let mut request = async_graphql::Request::new(route.document)
        .operation_name(route.operation)
        .variables(Variables::from_json(serde_json::Value::Object(vars)));
    if let Some((var, file)) = upload {
        request.set_upload(&format!("variables.{var}"), file);
    }
    if let Some(doc) = PARSED.get(route.document) {
        request.set_parsed_query(doc.clone());
    }
    let response =
        graphql::execute(&app.schema, &app.state, &app.operation_labels, request, ctx).await;
    if let Some(err) = response.errors.first() {
        return Err(AppError::from_graphql(err));
    }
    Ok(match response.data {
        async_graphql::Value::Object(mut m) => m
            .shift_remove(route.field)
            .unwrap_or(async_graphql::Value::Null),
        _ => async_graphql::Value::Null,
    })
}
