//! The REST compatibility layer: a table of routes, each executing a named GraphQL operation.
//!
//! A row says which operation runs, how its variables come from the path, the query string and
//! the body (each parsed by a typed serde struct first, for precise field errors), which field of
//! `data` is the response body, and the success status. The same table produces the OpenAPI paths.

/// An operation document: one operation file plus the fragment files it uses (paths under `src/rest/operations`).
macro_rules! doc {
    ($op:literal $(, $fragment:literal)*) => {
        concat!(include_str!(concat!("operations/", $op)) $(, include_str!(concat!("operations/fragments/", $fragment)))*)
    };
}

mod admin_routes;
mod bridge;
mod catalog_routes;
mod commerce_routes;
pub mod constraints;
mod identity_routes;
mod medicinal_routes;
pub mod openapi;
mod review_routes;
mod table;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::openapi::path::Parameter;
use utoipa::openapi::{RefOr, Schema};

use crate::error::{AppError, AppResult, FieldIssue};
use crate::http::App;

pub use table::routes;

/// Who may call a route: the bridge enforces it before reading the request (401 / 403 before any
/// 415 or 400); GraphQL guards and the services check again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Customer,
    Admin,
}

/// A type's OpenAPI schema, its name, and the schemas it refers to.
#[derive(Clone, Copy)]
pub struct SchemaRef {
    pub name: fn() -> String,
    pub schema: fn() -> RefOr<Schema>,
    pub deps: fn(&mut Vec<(String, RefOr<Schema>)>),
}

pub fn schema_of<T: utoipa::ToSchema>() -> SchemaRef {
    SchemaRef {
        name: || T::name().into_owned(),
        schema: T::schema,
        deps: T::schemas,
    }
}

/// A JSON request body bound to one GraphQL variable.
#[derive(Clone, Copy)]
pub struct BodySpec {
    pub var: &'static str,
    /// `application/json`, or `text/csv` for a raw text body bound to a String variable.
    pub content_type: &'static str,
    pub optional: bool,
    pub parse: fn(&[u8]) -> AppResult<serde_json::Value>,
    pub schema: SchemaRef,
}

/// Query-string parameters, each bound to the GraphQL variable of the same name.
#[derive(Clone, Copy)]
pub struct QuerySpec {
    pub parse: fn(&str) -> AppResult<serde_json::Map<String, serde_json::Value>>,
    pub params: fn() -> Vec<Parameter>,
}

/// A route that also takes `multipart/form-data`: the file part becomes a GraphQL `Upload`
/// variable; the other text parts are the body's fields (or one part holds the body as JSON).
#[derive(Clone, Copy)]
pub struct UploadSpec {
    /// The multipart part holding the file.
    pub file_field: &'static str,
    /// The GraphQL variable the file is bound to.
    pub var: &'static str,
    /// A part whose text is the JSON body (e.g. `product`), if any.
    pub json_field: Option<&'static str>,
    /// Whether the route only accepts multipart (true) or also a JSON body (false).
    pub multipart_only: bool,
}

pub struct RestRoute {
    pub method: Method,
    /// axum path syntax: `/api/users/{id}`. Path parameters are integer ids.
    pub path: &'static str,
    pub operation: &'static str,
    pub document: &'static str,
    /// The field of `data` returned as the body.
    pub field: &'static str,
    pub success: StatusCode,
    pub access: Access,
    pub tag: &'static str,
    pub summary: &'static str,
    pub body: Option<BodySpec>,
    pub query: Option<QuerySpec>,
    pub response: Option<SchemaRef>,
    pub upload: Option<UploadSpec>,
    /// When set, the field is sent as a file download instead of JSON.
    pub raw_response: Option<RawFile>,
    /// What the route may refuse beyond what its method, access and body imply.
    pub refusals: Refusals,
}

/// Refusals a route row declares, which the OpenAPI document states from here (never guessed
/// from a path): the default is none of them.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Refusals {
    /// 401 for wrong credentials (a password, a refresh token, an mfaToken), not for a bad bearer.
    pub credentials: bool,
    /// 429 with `Retry-After`: the per-IP credential budget, or an allowance such as three data
    /// exports a day.
    pub rate_limited: bool,
    /// 409 although the route is a GET (a receipt before payment); other methods always may.
    pub conflict: bool,
    /// 403 `consent_required` besides `forbidden` (no health-data consent recorded).
    pub consent: bool,
}

/// A file download: the GraphQL field is a String holding the file (text as is, or base64 for
/// binary files); `filename` may name the `{id}` path parameter.
#[derive(Clone, Copy)]
pub struct RawFile {
    pub content_type: &'static str,
    pub filename: &'static str,
    pub base64: bool,
}

/// A body of type `T` (unknown fields rejected) bound to the variable `var`.
impl RestRoute {
    /// A row with the common defaults: 200, public, no body, no query, no response schema.
    pub fn new(
        method: Method,
        path: &'static str,
        operation: &'static str,
        document: &'static str,
        field: &'static str,
    ) -> Self {
        RestRoute {
            method,
            path,
            operation,
            document,
            field,
            success: StatusCode::OK,
            access: Access::Public,
            tag: "",
            summary: "",
            body: None,
            query: None,
            response: None,
            upload: None,
            raw_response: None,
            refusals: Refusals::default(),
        }
    }

    /// Wrong credentials are a 401 (see [`Refusals::credentials`]).
    pub fn credentials(mut self) -> Self {
        self.refusals.credentials = true;
        self
    }

    /// The route may answer 429 (see [`Refusals::rate_limited`]).
    pub fn rate_limited(mut self) -> Self {
        self.refusals.rate_limited = true;
        self
    }

    /// The route may answer 409 although it is a GET (see [`Refusals::conflict`]).
    pub fn conflicts(mut self) -> Self {
        self.refusals.conflict = true;
        self
    }

    /// The route may answer 403 `consent_required` (see [`Refusals::consent`]).
    pub fn needs_consent(mut self) -> Self {
        self.refusals.consent = true;
        self
    }

    /// The field is a String sent as a file download (e.g. `text/csv`, `products.csv`).
    pub fn raw(mut self, content_type: &'static str, filename: &'static str) -> Self {
        self.raw_response = Some(RawFile {
            content_type,
            filename,
            base64: false,
        });
        self
    }

    /// The field is a base64 String decoded and sent as a binary download (e.g. a PDF).
    pub fn binary(mut self, content_type: &'static str, filename: &'static str) -> Self {
        self.raw_response = Some(RawFile {
            content_type,
            filename,
            base64: true,
        });
        self
    }

    pub fn upload(mut self, u: UploadSpec) -> Self {
        self.upload = Some(u);
        self
    }

    pub fn status(mut self, s: StatusCode) -> Self {
        self.success = s;
        self
    }

    pub fn access(mut self, a: Access) -> Self {
        self.access = a;
        self
    }

    pub fn doc(mut self, tag: &'static str, summary: &'static str) -> Self {
        self.tag = tag;
        self.summary = summary;
        self
    }

    pub fn body(mut self, b: Option<BodySpec>) -> Self {
        self.body = b;
        self
    }

    pub fn query(mut self, q: Option<QuerySpec>) -> Self {
        self.query = q;
        self
    }

    pub fn returns<T: utoipa::ToSchema>(mut self) -> Self {
        self.response = Some(schema_of::<T>());
        self
    }
}

pub fn json_body<T: DeserializeOwned + Serialize + utoipa::ToSchema>(
    var: &'static str,
) -> Option<BodySpec> {
    Some(BodySpec {
        var,
        content_type: "application/json",
        optional: false,
        parse: parse_json::<T>,
        schema: schema_of::<T>(),
    })
}

/// Like [`json_body`], but an empty body counts as absent.
pub fn optional_json_body<T: DeserializeOwned + Serialize + utoipa::ToSchema>(
    var: &'static str,
) -> Option<BodySpec> {
    json_body::<T>(var).map(|b| BodySpec {
        optional: true,
        ..b
    })
}

/// A raw CSV body bound to the String variable `var`.
pub fn csv_body(var: &'static str) -> Option<BodySpec> {
    Some(BodySpec {
        var,
        content_type: "text/csv",
        optional: false,
        parse: |bytes| {
            std::str::from_utf8(bytes)
                .map(|s| serde_json::Value::String(s.to_string()))
                .map_err(|_| AppError::invalid("body", "invalid_encoding", "The CSV must be UTF-8"))
        },
        schema: schema_of::<String>(),
    })
}

pub fn query<T: DeserializeOwned + Serialize + utoipa::IntoParams>() -> Option<QuerySpec> {
    Some(QuerySpec {
        parse: parse_query::<T>,
        params: || T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)),
    })
}

fn parse_json<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> AppResult<serde_json::Value> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| serde_error(".", e.to_string(), true))?;
    // Every JSON body is an object: serde's derived `Deserialize` would also take a struct from a
    // JSON array (`[null, null]` fills the fields in order), which the schema does not allow.
    if !value.is_object() {
        return Err(
            AppError::invalid_fields(vec![FieldIssue::new("body", "invalid_type")])
                .with_message("The body must be a JSON object"),
        );
    }
    integral_floats_to_integers(&mut value);
    let value: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        serde_error(&path, e.inner().to_string(), false)
    })?;
    serde_json::to_value(value).map_err(AppError::internal)
}

/// JSON has one number type: `2.0` is the integer 2 (as JSON Schema's `integer` says), so an
/// integral float becomes an integer before the typed fields read it. Only up to 2^53, where a
/// float still holds every integer exactly: beyond, the parsed float may be a rounded neighbour
/// of what was sent (`-9223372036854775809` reads as -2^63), and such numbers stay refused.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() <= EXACT {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(integral_floats_to_integers)
        }
        _ => {}
    }
}

fn parse_query<T: DeserializeOwned + Serialize>(
    raw: &str,
) -> AppResult<serde_json::Map<String, serde_json::Value>> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(raw));
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        serde_error(&path, e.inner().to_string(), false)
    })?;
    match serde_json::to_value(value).map_err(AppError::internal)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => Ok(Default::default()),
    }
}

fn form_urlencoded_parse(raw: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw.as_bytes())
}

/// Turns a serde error into field-level details.
fn serde_error(path: &str, message: String, syntax: bool) -> AppError {
    if syntax {
        return AppError::invalid("body", "invalid_json", "The body is not valid JSON");
    }
    let quoted = message.split('`').nth(1).map(str::to_string);
    let (field, issue) = if message.starts_with("unknown field") {
        // The path already ends at the unknown field.
        let name = quoted.unwrap_or_default();
        let field = if path.ends_with(&name) {
            path.to_string()
        } else {
            join_path(path, &name)
        };
        (field, "unknown_field")
    } else if message.starts_with("missing field") {
        let name = quoted.unwrap_or_default();
        (join_path(path, &name), "required")
    } else if message.starts_with("invalid type")
        || message.starts_with("invalid digit")
        || message.contains("invalid value")
    {
        (path.to_string(), "invalid_type")
    } else if message.starts_with("unknown variant") {
        (path.to_string(), "invalid_value")
    } else {
        (path.to_string(), "invalid")
    };
    let field = if field.is_empty() || field == "." {
        "body".to_string()
    } else {
        field
    };
    AppError::invalid_fields(vec![FieldIssue::new(field, issue)])
        .with_message(format!("Invalid request: {message}"))
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Every operation name used by a REST row (the bounded label set of the GraphQL metrics).
pub fn operation_names() -> std::collections::HashSet<&'static str> {
    routes().iter().map(|r| r.operation).collect()
}

fn method_filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::PATCH => MethodFilter::PATCH,
        Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::OPTIONS,
    }
}

/// The `/api` router built from the table.
pub fn router() -> Router<App> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<App>> = BTreeMap::new();
    for route in routes().iter() {
        let handler = move |state, ctx, path, query, body| {
            bridge::handle(route, state, ctx, path, query, body)
        };
        let mut method_router = on(method_filter(&route.method), handler);
        if route.upload.is_some() {
            // The multipart reader takes the file (up to 10 MB) from the body: the 1 MB default
            // is for JSON. The bridge still reads JSON bodies with the JSON limit.
            method_router = method_router.layer(axum::extract::DefaultBodyLimit::max(
                crate::http::upload::MULTIPART_BODY_LIMIT,
            ));
        }
        let entry = by_path.remove(route.path).unwrap_or_default();
        by_path.insert(route.path, entry.merge(method_router));
    }
    by_path
        .into_iter()
        .fold(Router::new(), |r, (path, mr)| r.route(path, mr))
}
