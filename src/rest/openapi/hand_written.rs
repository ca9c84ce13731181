//! The routes documented by hand: plain handlers (file downloads, the data-export ZIP), the
//! GraphQL endpoint and the operational routes.

use utoipa::openapi::path::{OperationBuilder, Parameter, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, HttpMethod, RefOr, Required, ResponseBuilder};

use super::{error_response, http_cached, if_none_match, rate_limited_response};
use crate::services::platform::files::{DOC_KINDS, IMAGE_KINDS};

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

/// A download's 503.
const STORE_UNAVAILABLE: &str =
    "service_unavailable: the file store (or the database) could not be reached; retry after `Retry-After` seconds";

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
        .response("503", error_response(STORE_UNAVAILABLE))
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
        .response("503", error_response(STORE_UNAVAILABLE))
        // Signed URLs need no token, and an anonymous request for a private file is a 404.
        .security(SecurityRequirement::default())
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build()
}

/// Adds the hand-written paths.
pub(super) fn add_to(paths: &mut Paths) {
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
}
