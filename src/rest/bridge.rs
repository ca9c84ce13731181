//! Executes a REST row's GraphQL operation and maps the outcome to the REST contract.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Variables;
use axum::body::Bytes;
use axum::extract::{RawPathParams, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::{routes, RestRoute};
use crate::actor::RequestCtx;
use crate::error::{AppError, AppResult};
use crate::graphql;
use crate::http::App;

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

pub async fn handle(
    route: &'static RestRoute,
    State(app): State<App>,
    Extension(ctx): Extension<RequestCtx>,
    params: RawPathParams,
    RawQuery(raw_query): RawQuery,
    body: Bytes,
) -> Response {
    match run(route, &app, ctx, &params, raw_query.as_deref(), &body).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
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
                return Err(AppError::invalid(
                    "body",
                    "required",
                    "A JSON body is required",
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
    body: &[u8],
) -> AppResult<Response> {
    let vars = variables(route, params, raw_query, body)?;
    let mut request = async_graphql::Request::new(route.document)
        .operation_name(route.operation)
        .variables(Variables::from_json(serde_json::Value::Object(vars)));
    if let Some(doc) = PARSED.get(route.document) {
        request.set_parsed_query(doc.clone());
    }
    let response = graphql::execute(&app.schema, &app.state, request, ctx).await;
    if let Some(err) = response.errors.first() {
        return Err(AppError::from_graphql(err));
    }
    if route.success == StatusCode::NO_CONTENT {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let value = match response.data {
        async_graphql::Value::Object(mut m) => m
            .shift_remove(route.field)
            .unwrap_or(async_graphql::Value::Null),
        _ => async_graphql::Value::Null,
    };
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
