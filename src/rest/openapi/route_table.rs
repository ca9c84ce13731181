//! The operations of the REST route table: each row's parameters, body and responses, the
//! refusals read from the row's flags.

use utoipa::openapi::encoding::EncodingBuilder;
use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    Content, ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder, Schema,
};

use super::{error_response, http_cached, if_none_match, rate_limited_response};
use crate::rest::{constraints, Access, BodySpec, RestRoute, SchemaRef, UploadSpec};

fn schema_ref(s: &SchemaRef) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name((s.name)()))
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

pub(super) fn operation(route: &RestRoute) -> Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.operation))
        .summary(Some(route.summary))
        .description(Some(format!(
            "Executes the GraphQL operation `{}` (field `{}`). Access: {:?}.",
            route.operation, route.field, route.access
        )))
        .tag(route.tag);
    let path_params = path_params(route);
    for param in &path_params {
        op = op.parameter(param.clone());
    }
    if let Some(q) = &route.query {
        for mut p in (q.params)() {
            constraints::apply_param(route.operation, &mut p);
            op = op.parameter(p);
        }
    }
    let body = request_body(route);
    let has_body = body.is_some();
    if let Some(body) = body {
        op = op.request_body(Some(body));
    }
    let success = route.success;
    if super::super::bridge::is_catalogue_read(route) {
        let (success_response, revalidated) = http_cached(success_response(route));
        op = op
            .parameter(if_none_match())
            .response(success.as_str(), success_response)
            .response("304", revalidated);
    } else {
        op = op.response(success.as_str(), success_response(route));
    }
    op = op.response(
        "400",
        error_response("validation_error: malformed or invalid input, with field details"),
    );
    op = refusals(op, route);
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
            error_response("service_unavailable: the database (or, for an upload, the file store) could not be reached; retry after `Retry-After` seconds"),
        )
        .build()
}

/// The `{name}` segments of the path: integer ids.
fn path_params(route: &RestRoute) -> Vec<Parameter> {
    route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|p| {
            let mut param = ParameterBuilder::new()
                .name(p)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(
                    ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                        utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Int64,
                        ),
                    )),
                ))
                .example(Some(serde_json::json!(1)))
                .build();
            constraints::apply_param(route.operation, &mut param);
            param
        })
        .collect()
}

/// The request body: JSON or CSV, and a multipart form for an upload row.
fn request_body(route: &RestRoute) -> Option<RequestBody> {
    let mut body = RequestBodyBuilder::new();
    if let Some(b) = &route.body {
        body = body
            .required(Some(if b.optional {
                Required::False
            } else {
                Required::True
            }))
            .content(b.content_type, body_content(b));
    }
    if let Some(u) = &route.upload {
        body = upload_form(body, u, route.body.as_ref());
    }
    (route.body.is_some() || route.upload.is_some()).then(|| body.build())
}

fn body_content(b: &BodySpec) -> Content {
    let json = b.content_type == "application/json";
    ContentBuilder::new()
        .schema(Some(if json {
            schema_ref(&b.schema)
        } else {
            // A raw text body (CSV): blank is "no body", refused as required.
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .pattern(Some(constraints::text_body_pattern()))
                .into()
        }))
        .example(if json {
            example_of(&b.schema)
        } else {
            Some(serde_json::json!(format!(
                "{}\nNorthern Lights Auto,semillas,Autofloreciente,,true,NL-AUTO-1G,1g,4990,40\n",
                crate::services::catalog::csv_io::COLUMNS.join(",")
            )))
        })
        .build()
}

/// The multipart form of an upload: the file part, and the body as one JSON part or as text parts.
fn upload_form(
    mut body: RequestBodyBuilder,
    u: &UploadSpec,
    json: Option<&BodySpec>,
) -> RequestBodyBuilder {
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
    let body_required = json.is_some_and(|b| !b.optional);
    match (u.json_field, json) {
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
    body.content("multipart/form-data", content.schema(Some(form)).build())
}

/// The success answer: a file download, a JSON body or no content.
fn success_response(route: &RestRoute) -> Response {
    let binary = || {
        ObjectBuilder::new().schema_type(Type::String).format(Some(
            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary),
        ))
    };
    match (&route.response, route.raw_response) {
        (_, Some(file)) if file.base64 => ResponseBuilder::new()
            .description("A file download")
            .content(
                file.content_type,
                ContentBuilder::new().schema(Some(binary())).build(),
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
            .description(route.success.canonical_reason().unwrap_or("Success"))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(schema_ref(s)))
                    .example(example_of(s))
                    .build(),
            )
            .build(),
        (None, None) => ResponseBuilder::new().description("No content").build(),
    }
}

/// The 401 and 403 a row's access and flags call for, and its security requirement.
fn refusals(mut op: OperationBuilder, route: &RestRoute) -> OperationBuilder {
    if route.access != Access::Public {
        op = op
            .response(
                "401",
                error_response("unauthorized: missing, invalid, expired or revoked token"),
            )
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    } else if route.refusals.credentials {
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
    op
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
