//! OpenAPI 3.1 document generated from the REST route table plus the operational routes.

use utoipa::openapi::path::{OperationBuilder, Parameter, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema,
};
use utoipa::PartialSchema;

use utoipa::openapi::encoding::EncodingBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::AdditionalProperties;

use super::{constraints, routes, Access, RestRoute, SchemaRef};
use crate::error::ErrorBody;
use crate::services::platform::files::{DOC_KINDS, IMAGE_KINDS};

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

fn schema_ref(s: &SchemaRef) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name((s.name)()))
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

/// The example declared on a schema (`#[schema(example = ...)]`), if any.
fn example_of(s: &SchemaRef) -> Option<serde_json::Value> {
    match (s.schema)() {
        RefOr::T(Schema::Object(o)) => o
            .examples
            .first()
            .cloned()
            .or_else(|| serde_json::to_value(&o).ok()?.get("example").cloned()),
        // A union (`oneOf`) carries its example the same way.
        RefOr::T(other) => {
            let v = serde_json::to_value(&other).ok()?;
            v.get("examples")
                .and_then(|e| e.get(0))
                .or_else(|| v.get("example"))
                .cloned()
        }
        _ => None,
    }
}

fn operation(route: &RestRoute) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.operation))
        .summary(Some(route.summary))
        .description(Some(format!(
            "Executes the GraphQL operation `{}` (field `{}`). Access: {:?}.",
            route.operation, route.field, route.access
        )))
        .tag(route.tag);
    let path_params: Vec<&str> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    for p in &path_params {
        let mut param = ParameterBuilder::new()
            .name(*p)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(
                ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
                )),
            ))
            .example(Some(serde_json::json!(1)))
            .build();
        constraints::apply_param(route.operation, &mut param);
        op = op.parameter(param);
    }
    if let Some(q) = &route.query {
        for mut p in (q.params)() {
            constraints::apply_param(route.operation, &mut p);
            op = op.parameter(p);
        }
    }
    let mut body = RequestBodyBuilder::new();
    let mut has_body = false;
    if let Some(b) = &route.body {
        has_body = true;
        body = body
            .required(Some(if b.optional {
                Required::False
            } else {
                Required::True
            }))
            .content(
                b.content_type,
                ContentBuilder::new()
                    .schema(Some(if b.content_type == "application/json" {
                        schema_ref(&b.schema)
                    } else {
                        // A raw text body (CSV): blank is "no body", refused as required.
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .pattern(Some(constraints::text_body_pattern()))
                            .into()
                    }))
                    .example(if b.content_type == "application/json" {
                        example_of(&b.schema)
                    } else {
                        Some(serde_json::json!(format!(
                            "{}\nNorthern Lights Auto,semillas,Autofloreciente,,true,NL-AUTO-1G,1g,4990,40\n",
                            crate::services::catalog::csv_io::COLUMNS.join(",")
                        )))
                    })
                    .build(),
            );
    }
    if let Some(u) = &route.upload {
        has_body = true;
        let mut form = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                u.file_field,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/octet-stream")
                    .description(Some("The file (≤ 10 MB); its type is decided by its content and must agree with its name")),
            )
            // Other parts are read as body fields, and unknown fields are refused.
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let mut content = ContentBuilder::new();
        if u.multipart_only {
            form = form.required(u.file_field);
            body = body.required(Some(Required::True));
        }
        let body_required = route.body.as_ref().is_some_and(|b| !b.optional);
        match (u.json_field, &route.body) {
            // The JSON body travels as one part.
            (Some(j), Some(b)) => {
                form = form.property(j, schema_ref(&b.schema));
                if body_required {
                    form = form.required(j);
                }
                content = content.encoding(
                    j,
                    EncodingBuilder::new()
                        .content_type(Some("application/json"))
                        .build(),
                );
            }
            // The body's fields travel as text parts: its required fields are required parts.
            (None, Some(b)) => {
                if let RefOr::T(Schema::Object(o)) = (b.schema.schema)() {
                    for name in &o.required {
                        if let Some(p) = o.properties.get(name) {
                            form = form.property(name, p.clone()).required(name);
                        }
                    }
                }
            }
            _ => {}
        }
        body = body.content("multipart/form-data", content.schema(Some(form)).build());
    }
    if has_body {
        op = op.request_body(Some(body.build()));
    }
    let success = route.success;
    let success_response = match (&route.response, route.raw_response) {
        (_, Some(file)) if file.base64 => ResponseBuilder::new()
            .description("A file download")
            .content(
                file.content_type,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
                        Some(utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Binary,
                        )),
                    )))
                    .build(),
            )
            .build(),
        (_, Some(file)) => ResponseBuilder::new()
            .description("A file download")
            .content(
                file.content_type,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .example(Some(serde_json::json!(
                        crate::services::catalog::csv_io::COLUMNS.join(",")
                    )))
                    .build(),
            )
            .build(),
        (Some(s), None) => ResponseBuilder::new()
            .description(success.canonical_reason().unwrap_or("Success"))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(schema_ref(s)))
                    .example(example_of(s))
                    .build(),
            )
            .build(),
        (None, None) => ResponseBuilder::new().description("No content").build(),
    };
    if super::bridge::is_catalogue_read(route) {
        let (success_response, revalidated) = http_cached(success_response);
        op = op
            .parameter(if_none_match())
            .response(success.as_str(), success_response)
            .response("304", revalidated);
    } else {
        op = op.response(success.as_str(), success_response);
    }
    op = op.response(
        "400",
        error_response("validation_error: malformed or invalid input, with field details"),
    );
    let credentials = route.refusals.credentials;
    if route.access != Access::Public {
        op = op
            .response(
                "401",
                error_response("unauthorized: missing, invalid, expired or revoked token"),
            )
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    } else if credentials {
        op = op.response(
            "401",
            error_response(
                "unauthorized: wrong credentials, an invalid, expired or reused refresh token, or an expired or used mfaToken",
            ),
        );
    } else {
        // Anonymous callers are welcome; a token that is sent must still be valid.
        op = op
            .response(
                "401",
                error_response("unauthorized: an invalid, expired or revoked token was sent"),
            )
            .security(SecurityRequirement::default())
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    }
    if route.access == Access::Admin {
        op = op.response(
            "403",
            error_response("forbidden: administrators only; mfa_required: an administrator without two-factor authentication while ADMIN_REQUIRE_2FA is on"),
        );
    } else if route.access == Access::Customer {
        op = op.response(
            "403",
            error_response(if route.refusals.consent {
                "forbidden: this account may not do this; consent_required: no health-data consent is recorded (give it with POST /api/me/consents/health_data, or send acceptHealthDataProcessing: true)"
            } else {
                "forbidden: this account may not do this (for example, reviewing a product it did not buy)"
            }),
        );
    }
    if !path_params.is_empty() || route.body.is_some() {
        op = op.response(
            "404",
            error_response("not_found: the resource, or one the body refers to, does not exist or is not yours"),
        );
    }
    // Any write may conflict; a GET only when its row says so (a receipt before payment).
    if route.method != axum::http::Method::GET || route.refusals.conflict {
        op = op.response("409", error_response("conflict"));
    }
    if has_body {
        op = op
            .response(
                "413",
                error_response("payload_too_large: the body exceeds its limit (1 MB for JSON and CSV, 10 MB per file)"),
            )
            .response(
                "415",
                error_response("unsupported_media_type: the Content-Type is not one this route accepts"),
            );
    }
    // The credential routes share a per-IP budget (`AUTH_RATE_LIMIT_PER_MINUTE`); a customer
    // may ask for three data exports a day.
    if route.refusals.rate_limited {
        op = op.response("429", rate_limited_response());
    }
    op.response("500", error_response("internal_error"))
        .response(
            "503",
            error_response("service_unavailable: the database could not be reached; retry after `Retry-After` seconds"),
        )
        .build()
}

fn plain_get(
    summary: &str,
    tag: &str,
    content_type: &str,
    description: &str,
) -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .summary(Some(summary))
        .tag(tag)
        .response(
            "200",
            ResponseBuilder::new()
                .description(description)
                .content(content_type, ContentBuilder::new().build())
                .build(),
        )
        .build()
}

fn graphql_response() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(
            "GraphQL response ({data, errors}); errors carry extensions.code, details and traceId",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                .build(),
        )
        .build()
}

fn query_param(name: &str, required: bool, about: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(about))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// `GET /graphql`: queries only (a GET must be safe); a browser asking for HTML without a query
/// gets GraphiQL instead.
fn graphql_get() -> utoipa::openapi::path::Operation {
    let (mut ok, not_modified) = http_cached(graphql_response());
    ok.content.insert(
        "text/html".into(),
        ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build(),
    );
    OperationBuilder::new()
        .summary(Some(
            "A GraphQL query via GET, or GraphiQL for a browser (Accept: text/html, no query)",
        ))
        .tag("graphql")
        .operation_id(Some("GraphqlGet"))
        .parameter(
            ParameterBuilder::new()
                .name("query")
                .parameter_in(ParameterIn::Query)
                .required(Required::True)
                .description(Some("The GraphQL document. A persisted-query request may instead leave it out and send `extensions={\"persistedQuery\": {\"version\": 1, \"sha256Hash\": \"<hex>\"}}` (URL-encoded JSON) naming a registered one"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
                .build(),
        )
        .parameter(query_param("operationName", false, "The operation to run"))
        .parameter(query_param(
            "variables",
            false,
            "The variables, as a JSON object",
        ))

        .parameter(if_none_match())
        .response("200", ok)
        .response("304", not_modified)
        .response(
            "400",
            error_response(
                "validation_error: no query, a syntax error, or variables that are not JSON",
            ),
        )
        .response(
            "405",
            error_response("method_not_allowed: mutations must be sent with POST"),
        )
        .response(
            "401",
            error_response("unauthorized: an invalid, expired or revoked token was sent"),
        )
        .response("429", rate_limited_response())
        .security(SecurityRequirement::default())
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build()
}

/// `POST /graphql`: `{query, operationName, variables}` as JSON, or the multipart request spec
/// for uploads.
fn graphql_post() -> utoipa::openapi::path::Operation {
    let nullable = |t: Type| {
        ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            t,
            Type::Null,
        ]))
    };
    // One request per HTTP request: a batch (an array) is refused with 400.
    let body = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "query",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .description(Some("The GraphQL document. A request may instead leave it out and name a registered one in `extensions.persistedQuery` (automatic persisted queries)")),
        )
        .required("query")
        .property("operationName", nullable(Type::String))
        .property("variables", nullable(Type::Object))
        .property(
            "extensions",
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::Object,
                    Type::Null,
                ]))
                .description(Some("`{\"persistedQuery\": {\"version\": 1, \"sha256Hash\": \"<hex>\"}}`: Apollo automatic persisted queries (an unknown hash answers the error PersistedQueryNotFound; send the query with its hash once to register it)")),
        )
        .build();
    OperationBuilder::new()
        .summary(Some(
            "Execute a GraphQL request ({query, operationName, variables})",
        ))
        .tag("graphql")
        .operation_id(Some("GraphqlPost"))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(body))
                        .example(Some(
                            serde_json::json!({"query": "{ products(pageSize: 1) { total } }"}),
                        ))
                        .build(),
                )
                .build(),
        ))
        .response("200", graphql_response())
        .response(
            "400",
            error_response(
                "validation_error: the body is not one GraphQL request (a JSON object with a \
                 non-empty `query`; batches are refused)",
            ),
        )
        .response(
            "401",
            error_response("unauthorized: an invalid, expired or revoked token was sent"),
        )
        .response(
            "413",
            error_response("payload_too_large: the body exceeds its limit"),
        )
        .response(
            "415",
            error_response(
                "unsupported_media_type: not application/json (or multipart with a bearer token)",
            ),
        )
        .response("429", rate_limited_response())
        .security(SecurityRequirement::default())
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build()
}

/// `GET /api/files/{id}`: a plain handler (the body is the file), documented by hand.
fn param(name: &str, at: ParameterIn, ty: Type, required: bool, about: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(about))
        .schema(Some(ObjectBuilder::new().schema_type(ty)))
        .build()
}

/// `GET /api/me/data-exports/{id}/download`: a plain handler (the body is the ZIP).
fn data_export_download() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .summary(Some(
            "Download a ready export of your data (a ZIP: data.json, README.txt, your files) with the signed link from GET /api/me/data-exports/{id}; only with your bearer token, until the link expires (24 h); otherwise 404",
        ))
        .tag("privacy")
        .operation_id(Some("DownloadDataExport"))
        .parameter(param("id", ParameterIn::Path, Type::Integer, true, "The export's id"))
        .parameter(param("expires", ParameterIn::Query, Type::Integer, true, "Expiry (Unix seconds)"))
        .parameter(param("signature", ParameterIn::Query, Type::String, true, "HMAC-SHA256 (hex)"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The ZIP, with Content-Disposition: attachment")
                .content(
                    "application/zip",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(Some(
                            utoipa::openapi::SchemaFormat::KnownFormat(
                                utoipa::openapi::KnownFormat::Binary,
                            ),
                        ))))
                        .build(),
                )
                .build(),
        )
        .response("400", error_response("validation_error: a malformed link"))
        .response("401", error_response("unauthorized: missing, invalid, expired or revoked token"))
        .response("404", error_response("not_found: no such ready export of yours, a wrong signature or an expired link"))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build()
}

fn file_download() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .summary(Some(
            "Download a stored file: private ones to their owner or an admin (bearer), or to anyone with an unexpired signed URL; others 404",
        ))
        .tag("uploads")
        .operation_id(Some("DownloadFile"))
        .parameter(param("id", ParameterIn::Path, Type::Integer, true, "The file id"))
        .parameter(param(
            "expires",
            ParameterIn::Query,
            Type::Integer,
            false,
            "Signed URL: expiry (Unix seconds)",
        ))
        .parameter(param(
            "signature",
            ParameterIn::Query,
            Type::String,
            false,
            "Signed URL: HMAC-SHA256 (hex)",
        ))
        .response("200", {
            let mut ok = ResponseBuilder::new().description(
                "The file, with Content-Disposition: attachment and X-Content-Type-Options: nosniff",
            );
            // Every kind an upload may hold, as the server stores and serves it.
            let mut kinds: Vec<&str> = IMAGE_KINDS
                .iter()
                .chain(DOC_KINDS)
                .map(|k| k.mime())
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            for kind in kinds {
                ok = ok.content(
                    kind,
                    ContentBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                                    utoipa::openapi::KnownFormat::Binary,
                                ))),
                        ))
                        .build(),
                );
            }
            ok.build()
        })
        .response("400", error_response("validation_error: a malformed signed URL"))
        .response("401", error_response("unauthorized: an invalid, expired or revoked token"))
        .response("404", error_response("not_found: no such file, not yours, or no valid signature"))
        // Signed URLs need no token, and an anonymous request for a private file is a 404.
        .security(SecurityRequirement::default())
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
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
            operation(route),
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
    let ops = [
        (
            "/healthz",
            plain_get(
                "Liveness: the process is up",
                "operations",
                "application/json",
                "Alive",
            ),
        ),
        ("/readyz", {
            let mut op = plain_get(
                "Readiness: database reachable and migrations current",
                "operations",
                "application/json",
                "Ready",
            );
            op.responses
                .responses
                .insert(
                    "503".into(),
                    RefOr::T(error_response(
                        "unavailable: not ready (database unreachable or migrations pending); retry after `Retry-After` seconds",
                    )),
                );
            op
        }),
        (
            "/metrics",
            plain_get(
                "Prometheus metrics",
                "operations",
                "text/plain",
                "Metrics in the text exposition format",
            ),
        ),
        (
            "/openapi.json",
            plain_get(
                "This document",
                "operations",
                "application/json",
                "OpenAPI 3.1",
            ),
        ),
    ];
    for (p, op) in ops {
        paths.add_path_operation(p, vec![HttpMethod::Get], op);
    }
    paths.add_path_operation("/graphql", vec![HttpMethod::Get], graphql_get());
    paths.add_path_operation("/graphql", vec![HttpMethod::Post], graphql_post());
    paths.add_path_operation("/api/files/{id}", vec![HttpMethod::Get], file_download());
    paths.add_path_operation(
        "/api/me/data-exports/{id}/download",
        vec![HttpMethod::Get],
        data_export_download(),
    );
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
            ["auth", "users", "privacy", "catalog", "uploads", "addresses", "cart", "checkout", "coupons", "orders", "payments", "medicinal", "reviews", "admin", "operations", "graphql"]
                .map(|t| TagBuilder::new().name(t).build())
                .to_vec(),
        ))
        .build()
}

pub fn yaml() -> String {
    document().to_yaml().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status codes of an operation as the document states them.
    fn statuses(route: &RestRoute) -> Vec<String> {
        operation(route)
            .responses
            .responses
            .keys()
            .cloned()
            .collect()
    }

    fn described(route: &RestRoute, status: &str) -> String {
        match operation(route).responses.responses.get(status) {
            Some(utoipa::openapi::RefOr::T(r)) => r.description.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn refusals_come_from_the_route_row() {
        use axum::http::Method;
        let row = || RestRoute::new(Method::GET, "/api/auth/example", "Example", "{ x }", "x");
        let plain = row();
        let codes = statuses(&plain);
        // Not guessed from the path: an /api/auth/ GET without flags may not answer 429 or 409.
        assert!(!codes.contains(&"429".to_string()), "{codes:?}");
        assert!(!codes.contains(&"409".to_string()), "{codes:?}");
        assert!(!described(&plain, "401").contains("wrong credentials"));

        let flagged = row().rate_limited().conflicts().credentials();
        let codes = statuses(&flagged);
        assert!(codes.contains(&"429".to_string()), "{codes:?}");
        assert!(codes.contains(&"409".to_string()), "{codes:?}");
        assert!(described(&flagged, "401").contains("wrong credentials"));

        let customer = RestRoute::new(Method::POST, "/api/example", "Example", "{ x }", "x")
            .access(crate::rest::Access::Customer);
        assert!(!described(&customer, "403").contains("consent_required"));
        assert!(described(&customer.needs_consent(), "403").contains("consent_required"));
    }
}
