//! OpenAPI 3.1 document generated from the REST route table plus the operational routes.

mod hand_written;
mod route_table;

use utoipa::openapi::path::{ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema,
};
use utoipa::PartialSchema;

use utoipa::openapi::header::HeaderBuilder;

use super::{constraints, routes};
use crate::error::ErrorBody;

fn http_method(m: &axum::http::Method) -> HttpMethod {
    match m.as_str() {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Options,
    }
}

/// The `Retry-After` header of a 429: seconds until the limit resets.
fn rate_limited_response() -> utoipa::openapi::Response {
    let mut r = error_response(
        "rate_limited: too many attempts from this address; retry after `Retry-After` seconds",
    );
    r.headers.insert(
        "Retry-After".into(),
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .description(Some("Seconds to wait before retrying"))
            .build(),
    );
    r
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// A catalogue read's HTTP caching: its 200 with `ETag`, `Cache-Control` and `Vary`, and the 304
/// a matching `If-None-Match` gets.
fn http_cached(
    mut ok: utoipa::openapi::Response,
) -> (utoipa::openapi::Response, utoipa::openapi::Response) {
    let headers = [
        ("ETag", string_header("Strong entity tag of this answer (for this viewer class)")),
        (
            "Cache-Control",
            string_header("`public, max-age=0, must-revalidate` anonymously (plus `s-maxage` when HTTP_CACHE_S_MAXAGE_SECONDS is set); `private, no-store` with a token"),
        ),
        ("Vary", string_header("`Authorization`: the answer depends on the viewer")),
    ];
    let mut not_modified = ResponseBuilder::new()
        .description(
            "Not Modified: `If-None-Match` names the current answer's tag (nothing was executed)",
        )
        .build();
    for (name, header) in headers {
        ok.headers.insert(name.into(), header.clone());
        not_modified.headers.insert(name.into(), header);
    }
    (ok, not_modified)
}

fn if_none_match() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("If-None-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Entity tags from earlier answers (or `*`): when one is current, the answer is 304 with no body",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                .build(),
        )
        .build()
}

/// States the server's limits on the request schemas (see [`constraints`]); returns the rules
/// that found no property of a fitting type to apply to.
pub fn constrain(schemas: &mut [(String, RefOr<Schema>)]) -> Vec<String> {
    let mut unapplied = Vec::new();
    for (schema, property, rule) in constraints::body_rules() {
        let target = schemas
            .iter_mut()
            .find(|(name, _)| name == schema)
            .and_then(|(_, s)| match s {
                RefOr::T(Schema::Object(o)) => o.properties.get_mut(property),
                _ => None,
            });
        let applied = match target {
            Some(RefOr::T(Schema::Object(p))) => constraints::apply(p, &rule),
            // A list: the rule is its items'.
            Some(RefOr::T(Schema::Array(a))) => match &mut a.items {
                utoipa::openapi::schema::ArrayItems::RefOrSchema(item) => match item.as_mut() {
                    RefOr::T(Schema::Object(o)) => constraints::apply(o, &rule),
                    _ => false,
                },
                _ => false,
            },
            // A narrower choice than the referenced enum: stated inline.
            Some(target @ RefOr::Ref(_)) if matches!(rule, constraints::Rule::OneOf(_)) => {
                let mut o = ObjectBuilder::new().schema_type(Type::String).build();
                let applied = constraints::apply(&mut o, &rule);
                *target = RefOr::T(Schema::Object(o));
                applied
            }
            _ => false,
        };
        if !applied {
            unapplied.push(format!("{schema}.{property}"));
        }
    }
    for (name, s) in schemas.iter_mut() {
        if !name.ends_with("Input") {
            continue;
        }
        if let RefOr::T(Schema::Object(o)) = s {
            for p in o.properties.values_mut() {
                if let RefOr::T(p) = p {
                    if let Schema::Object(o) = p {
                        constraints::bound_integers(o);
                    }
                    constraints::edge_text(p);
                }
            }
        }
    }
    unapplied
}

/// The constraint rules that found nothing to apply to (a test keeps this empty).
pub fn unapplied_constraints() -> Vec<String> {
    let mut schemas = Vec::new();
    for route in routes() {
        if let Some(b) = &route.body {
            schemas.push(((b.schema.name)(), (b.schema.schema)()));
            (b.schema.deps)(&mut schemas);
        }
    }
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    constrain(&mut schemas)
}

/// The whole document (also written to `openapi.yaml` by `dispensary print-openapi`).
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    let mut schemas: Vec<(String, RefOr<Schema>)> = vec![("ErrorBody".into(), ErrorBody::schema())];
    <ErrorBody as utoipa::ToSchema>::schemas(&mut schemas);
    for route in routes() {
        paths.add_path_operation(
            route.path,
            vec![http_method(&route.method)],
            route_table::operation(route),
        );
        for s in route
            .body
            .iter()
            .map(|b| &b.schema)
            .chain(route.response.iter())
        {
            schemas.push(((s.name)(), (s.schema)()));
            (s.deps)(&mut schemas);
        }
    }
    hand_written::add_to(&mut paths);
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    constrain(&mut schemas);
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Dispensary API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "REST compatibility layer of the dispensary backend. Every route executes a GraphQL operation \
                     of the schema served at /graphql; errors use one shape: {\"error\": {code, message, details, traceId}}.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some(
            ["auth", "users", "privacy", "catalog", "uploads", "addresses", "cart", "checkout", "coupons", "orders", "payments", "medicinal", "reviews", "admin", "webhooks", "operations", "graphql"]
                .map(|t| TagBuilder::new().name(t).build())
                .to_vec(),
        ))
        .build()
}

/// The document as `openapi.yaml` holds it: the paths and, under `webhooks` (OpenAPI 3.1), what
/// the store POSTs to integrators' endpoints — one entry per event type.
pub fn yaml() -> String {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    doc["webhooks"] = webhooks();
    serde_norway::to_string(&doc).unwrap_or_default()
}

/// One webhook per event type: the signed POST's headers and its body's schema.
fn webhooks() -> serde_json::Value {
    use crate::services::integrations::DATA_FIELDS;
    use serde_json::json;
    let header = |name: &str, description: &str, example: &str| {
        json!({"name": name, "in": "header", "required": true, "description": description,
               "schema": {"type": "string"}, "example": example})
    };
    let mut out = serde_json::Map::new();
    for (kind, fields) in DATA_FIELDS {
        let properties: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(name, t)| {
                let schema = if *t == "array" {
                    json!({"type": "array", "items": {"type": "string"}})
                } else {
                    json!({"type": t})
                };
                ((*name).to_string(), schema)
            })
            .collect();
        let required: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        out.insert(
            (*kind).to_string(),
            json!({"post": {
                "tags": ["webhooks"],
                "summary": format!("{kind}: signed per Standard Webhooks (README, \"Outbound webhooks\")"),
                "parameters": [
                    header("webhook-id", "msg_<event id>: the same on every attempt; de-duplicate by it", "msg_812"),
                    header("webhook-timestamp", "Unix seconds of this attempt", "1765188000"),
                    header("webhook-signature", "v1,<base64 HMAC-SHA256 of id.timestamp.body> — two, space-separated, for 24 h after a rotation", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
                ],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["type", "timestamp", "data", "version"],
                    "properties": {
                        "type": {"type": "string", "const": kind},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "data": {"type": "object", "required": required, "properties": properties},
                        "version": {"type": "integer", "const": crate::services::integrations::PAYLOAD_VERSION},
                    },
                }}}},
                "responses": {
                    "2XX": {"description": "Delivered"},
                    "410": {"description": "Gone: the store disables the endpoint"},
                    "default": {"description": "Tried again later (8 attempts over about a day)"},
                },
            }}),
        );
    }
    serde_json::Value::Object(out)
}
