//! The HTTP edge: authorization before validation, CSRF-safe media types, security headers, and
//! early answers (413, 401) that clients writing their whole body first can still read.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use dispensary::rest::{routes, Access, RestRoute};
use reqwest::{Method, StatusCode};
use sea_orm::{FromQueryResult, JsonValue, Statement};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::uploads::PNG_1X1;

fn assert_error(r: &Resp, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert_eq!(r.error_code(), code, "{what}: {}", r.text);
    let trace = r.body["error"]["traceId"].as_str().expect("traceId");
    assert_eq!(
        Some(trace),
        r.header("x-request-id"),
        "{what}: traceId equals X-Request-Id"
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {}",
        r.text
    );
    assert!(r.body["error"]["details"].is_array(), "{what}: {}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}"
    );
}

fn method_of(route: &RestRoute) -> Method {
    Method::from_bytes(route.method.as_str().as_bytes()).expect("method")
}

/// The row's path with every `{param}` replaced by `value`.
fn path_with(route: &RestRoute, value: &str) -> String {
    let mut out = String::new();
    let mut rest = route.path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn customer_token(body: &Value) -> String {
    body["accessToken"].as_str().expect("token").to_string()
}

const TABLES: &[&str] = &[
    "users",
    "user_profiles",
    "auth_tokens",
    "revoked_access_tokens",
    "addresses",
    "categories",
    "products",
    "product_variants",
    "product_reviews",
    "carts",
    "cart_items",
    "coupons",
    "orders",
    "order_items",
    "stock_reservations",
    "payments",
    "payment_events",
    "files",
    "medicinal_documents",
    "idempotency_keys",
    "system_logs",
];

/// Every row of every table, to prove a request changed nothing.
async fn database_snapshot(app: &TestApp) -> BTreeMap<&'static str, Vec<JsonValue>> {
    let backend = app.state.db.get_database_backend();
    let mut out = BTreeMap::new();
    for table in TABLES {
        let rows = JsonValue::find_by_statement(Statement::from_string(
            backend,
            format!("SELECT * FROM {table} ORDER BY 1"),
        ))
        .all(&app.state.db)
        .await
        .unwrap_or_else(|e| panic!("snapshot of {table}: {e}"));
        out.insert(*table, rows);
    }
    out
}

fn assert_same_database(
    before: &BTreeMap<&'static str, Vec<JsonValue>>,
    after: &BTreeMap<&'static str, Vec<JsonValue>>,
) {
    for (table, rows) in before {
        assert_eq!(
            Some(rows),
            after.get(table),
            "table {table} changed under refused requests"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Authorization before validation.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_non_public_row_refuses_before_reading_its_input() {
    let app = TestApp::spawn().await;
    let customer = customer_token(&app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await);
    // A token revoked by logout: the 401 says why, as `require_user` words it.
    let (revoked, _, _) = app.register("revoked@example.cl").await;
    let r = app
        .call(Method::POST, "/api/auth/logout", Some(&revoked), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let before = database_snapshot(&app).await;

    let guarded: Vec<&RestRoute> = routes()
        .iter()
        .filter(|r| r.access != Access::Public)
        .collect();
    assert!(guarded.len() > 40, "the table lists the guarded rows");
    for route in &guarded {
        let method = method_of(route);
        let ok_path = path_with(route, "1");
        // Input that fails every check: a non-integer id, bad query parameters, an unknown field.
        let bad_path = format!("{}?page=0&pageSize=1000&bogus=1", path_with(route, "abc"));
        let attempts = |token: Option<&str>| {
            let mut empty = app.client.request(method.clone(), app.url(&ok_path));
            let mut invalid = app
                .client
                .request(method.clone(), app.url(&bad_path))
                .json(&json!({"bogus": 1, "code": "X"}));
            let mut garbage = app
                .client
                .request(method.clone(), app.url(&ok_path))
                .header("content-type", "text/plain")
                .body("\u{0}garbage, not JSON");
            if let Some(t) = token {
                empty = empty.bearer_auth(t);
                invalid = invalid.bearer_auth(t);
                garbage = garbage.bearer_auth(t);
            }
            [("empty", empty), ("invalid", invalid), ("garbage", garbage)]
        };
        for (kind, req) in attempts(None) {
            let r = app.send(req).await;
            let what = format!("anonymous {} {} ({kind} body)", route.method, route.path);
            assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", &what);
        }
        let (_, req) = attempts(Some(&revoked))
            .into_iter()
            .nth(1)
            .expect("invalid");
        let r = app.send(req).await;
        let what = format!("revoked token on {} {}", route.method, route.path);
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", &what);
        assert_eq!(
            r.body["error"]["message"], "The token has been revoked",
            "{what}"
        );
        if route.access == Access::Admin {
            for (kind, req) in attempts(Some(&customer)) {
                let r = app.send(req).await;
                let what = format!("customer {} {} ({kind} body)", route.method, route.path);
                assert_error(&r, StatusCode::FORBIDDEN, "forbidden", &what);
            }
        }
    }
    assert_same_database(&before, &database_snapshot(&app).await);
}

#[tokio::test]
async fn creating_a_coupon_checks_the_caller_before_the_body() {
    let app = TestApp::spawn().await;
    let customer = customer_token(&app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await);
    let admin = app.admin_token().await;
    let body = json!({"code": "X"});
    let r = app.post("/api/coupons", None, body.clone()).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", "anonymous");
    let r = app
        .post("/api/coupons", Some(&customer), body.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "customer");
    // Only the admin gets to learn what the body lacks.
    let r = app.post("/api/coupons", Some(&admin), body).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation_error", "admin");
    assert!(r.has_detail("type", "required"), "{}", r.text);
    // An expired token is named as such, before the body is looked at.
    let r = app
        .post("/api/coupons", Some("not.a.jwt"), json!({"code": "X"}))
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", "bad token");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM coupons").await, 0);
}

/// Variables a real client could send to each guarded mutation: they pass GraphQL's own input
/// coercion, so what refuses the request is the guard, not the arguments.
fn plausible_variables(operation: &str) -> Option<Value> {
    Some(match operation {
        "Logout"
        | "OpenCart"
        | "ClearCart"
        | "ResendEmailVerification"
        | "RevokeOtherSessions"
        | "SetupTwoFactor"
        | "GiveHealthDataConsent"
        | "WithdrawPrivacyPolicyConsent"
        | "WithdrawHealthDataConsent"
        | "RequestDataExport" => json!({}),
        "EnableTwoFactor" => json!({"input": {"code": "123456"}}),
        "DisableTwoFactor" => json!({"input": {"password": CUSTOMER_PASSWORD, "code": "123456"}}),
        "RequestAccountDeletion" => json!({"input": {"password": CUSTOMER_PASSWORD}}),
        "BlockProcessing" => json!({"id": 2, "input": {"reason": "Edge"}}),
        "CreateApiKey" => json!({"input": {"name": "Edge", "scopes": ["orders:read"]}}),
        "CreateWebhook" => {
            json!({"input": {"url": "https://erp.example.cl/h", "eventTypes": ["order.paid"]}})
        }
        "UpdateWebhook" => json!({"id": 1, "input": {"isActive": false}}),
        "UpdateMe" => json!({"input": {"name": "Edge Case"}}),
        "ChangePassword" => {
            json!({"input": {"currentPassword": CUSTOMER_PASSWORD, "newPassword": "edgeCase123"}})
        }
        "UpdateUser" => json!({"id": 1, "input": {"role": "admin", "isActive": false}}),
        "DeleteUser"
        | "DeleteCategory"
        | "DeleteProduct"
        | "DeleteVariant"
        | "DeleteAddress"
        | "DeleteCoupon"
        | "CancelOrder"
        | "DeleteMedicinalDocument"
        | "RetryJob"
        | "RevokeApiKey"
        | "DeleteWebhook"
        | "RotateWebhookSecret"
        | "RedeliverWebhook"
        | "ProcessPrivacyRequest"
        | "UnblockProcessing"
        | "RevokeSession"
        | "RevokeUserSessions" => json!({"id": 1}),
        "CreateCategory" => json!({"input": {"name": "Edge"}}),
        "UpdateCategory" => json!({"id": 1, "input": {"name": "Edge"}}),
        "CreateProduct" => json!({"input": {"categoryId": 1, "name": "Edge"}}),
        "UpdateProduct" => json!({"id": 1, "input": {"name": "Edge", "isActive": false}}),
        "CreateVariant" => {
            json!({"id": 1, "input": {"sku": "EDGE-1", "optionLabel": "10 g", "priceCents": 1000}})
        }
        "UpdateVariant" => json!({"id": 1, "input": {"priceCents": 1, "stock": 0}}),
        "ImportProducts" => json!({
            "csv": "name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock\n\
                    Edge,flores,,,true,EDGE-CSV,1 g,1000,5\n",
            "dryRun": false
        }),
        "CreateAddress" => json!({"input": {
            "addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"
        }}),
        "UpdateAddress" => json!({"id": 1, "input": {"isDefault": true}}),
        "SetCartItem" => json!({"input": {"variantId": 1, "quantity": 1}}),
        "ConfirmCheckout" => json!({"input": {
            "items": [{"variantId": 1, "quantity": 1}], "shippingMethod": "retiro_tienda"
        }}),
        "CreateCoupon" => json!({"input": {"code": "EDGE10", "type": "percent", "value": 10}}),
        "UpdateCoupon" => json!({"id": 1, "input": {"isActive": false}}),
        "UpdateOrderStatus" => json!({"id": 1, "input": {"status": "cancelled"}}),
        "UpdateOrderTracking" => {
            json!({"id": 1, "input": {"courier": "chilexpress", "trackingNumber": "123"}})
        }
        "StartPayment" => json!({"input": {"orderId": 1, "provider": "test"}}),
        "ConfirmPayment" => json!({"input": {"orderId": 1, "provider": "test", "token": "t"}}),
        "SubmitMedicinalDocument" => json!({"input": {"docType": "receta", "fileId": 1}}),
        "AcceptPrivacyPolicy" => json!({"input": {"policyVersion": "2026-12-01"}}),
        "ReviewMedicinalDocument" => json!({"id": 1, "input": {"status": "approved"}}),
        "CreateReview" => json!({"id": 1, "input": {"rating": 5, "body": "Muy bueno"}}),
        "ModerateReview" => json!({"id": 1, "input": {"isVisible": false}}),
        _ => return None,
    })
}

/// The root fields of a document's mutation, or nothing when it is a query.
fn mutation_fields(document: &str) -> Vec<String> {
    use async_graphql::parser::types::{OperationType, Selection};
    let doc = async_graphql::parser::parse_query(document).expect("row document parses");
    doc.operations
        .iter()
        .filter(|(_, op)| op.node.ty == OperationType::Mutation)
        .flat_map(|(_, op)| {
            op.node
                .selection_set
                .node
                .items
                .iter()
                .filter_map(|s| match &s.node {
                    Selection::Field(f) => Some(f.node.name.node.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every mutation resolver in `src/graphql`, with whether it declares a guard: (Rust name, guarded).
/// async-graphql runs a field's guard before its resolver body, so a guarded resolver never runs
/// for a caller the guard refuses (the arguments are only parsed, not used).
fn mutation_resolvers() -> Vec<(String, bool)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/graphql");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/graphql") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("source");
        let mut in_mutation = false;
        let mut object_guard = false;
        let mut preamble = String::new();
        let mut previous = "";
        for line in source.lines() {
            if line.starts_with("impl ") && line.contains("Mutation") && line.ends_with('{') {
                in_mutation = true;
                object_guard = previous.contains("guard");
                preamble.clear();
            } else if in_mutation && line == "}" {
                in_mutation = false;
            } else if in_mutation {
                if let Some(rest) = line.trim_start().strip_prefix("async fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push((name, object_guard || preamble.contains("guard = ")));
                    preamble.clear();
                } else if line == "    }" {
                    preamble.clear();
                } else {
                    preamble.push_str(line);
                }
            }
            previous = line;
        }
    }
    out
}

#[tokio::test]
async fn guarded_mutations_never_reach_their_resolvers() {
    const PUBLIC_MUTATIONS: [&str; 9] = [
        "register",
        "login",
        "signIn",
        "verifyMfa",
        "refreshToken",
        "verifyEmail",
        "forgotPassword",
        "resetPassword",
        // Sign-in is refused while an erasure is pending: the credentials are the proof.
        "cancelAccountDeletion",
    ];
    // Completeness: every mutation of the schema is either public or run by a guarded row.
    let schema = async_graphql::parser::parse_schema(dispensary::graphql::sdl()).expect("SDL");
    let schema_mutations: HashSet<String> = schema
        .definitions
        .iter()
        .filter_map(|d| match d {
            async_graphql::parser::types::TypeSystemDefinition::Type(t)
                if t.node.name.node == "Mutation" =>
            {
                match &t.node.kind {
                    async_graphql::parser::types::TypeKind::Object(o) => Some(
                        o.fields
                            .iter()
                            .map(|f| f.node.name.node.to_string())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                }
            }
            _ => None,
        })
        .flatten()
        .collect();
    let guarded: Vec<&RestRoute> = routes()
        .iter()
        .filter(|r| r.access != Access::Public && !mutation_fields(r.document).is_empty())
        .collect();
    let covered: HashSet<String> = guarded
        .iter()
        .flat_map(|r| mutation_fields(r.document))
        .collect();
    for m in &schema_mutations {
        assert!(
            PUBLIC_MUTATIONS.contains(&m.as_str()) || covered.contains(m),
            "mutation {m} is neither public nor run by a guarded REST row: add it to this test"
        );
    }
    for m in PUBLIC_MUTATIONS {
        assert!(!covered.contains(m), "{m} is public");
    }
    // Every resolver of a non-public mutation declares its guard.
    let resolvers = mutation_resolvers();
    assert_eq!(
        resolvers.len(),
        schema_mutations.len(),
        "one resolver per schema mutation: {resolvers:?}"
    );
    for (name, guarded) in &resolvers {
        let public = [
            "register",
            "login",
            "sign_in",
            "verify_mfa",
            "refresh_token",
            "verify_email",
            "forgot_password",
            "reset_password",
            "cancel_account_deletion",
        ]
        .contains(&name.as_str());
        assert!(
            public || *guarded,
            "mutation resolver {name} has no guard: anonymous callers would reach it"
        );
    }

    let app = TestApp::spawn().await;
    let customer = customer_token(&app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await);
    let before = database_snapshot(&app).await;
    let mut tried = 0;
    for route in &guarded {
        let Some(variables) = plausible_variables(route.operation) else {
            // `Upload!` variables only travel in multipart requests (tested below).
            assert!(
                route.document.contains("Upload!"),
                "no plausible variables for {}",
                route.operation
            );
            continue;
        };
        let body = json!({
            "query": route.document,
            "operationName": route.operation,
            "variables": variables,
        });
        let mut callers = vec![(None, "unauthorized")];
        if route.access == Access::Admin {
            callers.push((Some(customer.as_str()), "forbidden"));
        }
        for (token, code) in callers {
            let r = app.post_gql(token, body.clone()).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", route.operation, r.text);
            assert_eq!(
                r.body["errors"][0]["extensions"]["code"],
                code,
                "{} as {}: {}",
                route.operation,
                token.map_or("anonymous", |_| "customer"),
                r.text
            );
            assert!(
                r.body["data"].is_null() || r.body["data"][route.field].is_null(),
                "{}: {}",
                route.operation,
                r.text
            );
            tried += 1;
        }
    }
    assert!(tried >= guarded.len(), "every guarded mutation was tried");

    // The upload mutations, as multipart: an anonymous upload is refused before it is read; a
    // customer's image upload stops at the admin guard.
    let image_upload = routes()
        .iter()
        .find(|r| r.operation == "UploadImage")
        .expect("UploadImage row");
    let form = |doc: &str| {
        reqwest::multipart::Form::new()
            .text(
                "operations",
                json!({"query": doc, "variables": {"file": null}}).to_string(),
            )
            .text("map", json!({"0": ["variables.file"]}).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(PNG_1X1.to_vec()).file_name("a.png"),
            )
    };
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .multipart(form(image_upload.document)),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "anonymous upload",
    );
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .bearer_auth(&customer)
                .multipart(form(image_upload.document)),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "forbidden",
        "{}",
        r.text
    );
    assert_same_database(&before, &database_snapshot(&app).await);
}

// ---------------------------------------------------------------------------------------------
// 5. CSRF-safe media types.
// ---------------------------------------------------------------------------------------------

const REGISTER: &str =
    r#"{"name":"Simple Request","email":"simple@example.cl","password":"secreto123"}"#;

async fn users_named(app: &TestApp, email: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT COUNT(*) FROM users WHERE email = '{email}'"
    ))
    .await
}

#[tokio::test]
async fn json_under_a_simple_request_type_is_refused_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let gql_register = json!({
        "query": "mutation { register(input: {name: \"Simple Request\", email: \"simple@example.cl\", password: \"secreto123\"}) { accessToken } }"
    })
    .to_string();
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        Some("nonsense"),
        None,
    ] {
        for (path, body) in [
            ("/api/auth/register", REGISTER.to_string()),
            ("/graphql", gql_register.clone()),
        ] {
            let mut req = app.client.post(app.url(path)).body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let r = app.send(req).await;
            let what = format!("{path} as {content_type:?}");
            assert_error(
                &r,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &what,
            );
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        }
    }
    assert_eq!(users_named(&app, "simple@example.cl").await, 0);

    // The same bodies as JSON (parameters allowed) do work.
    let r = app
        .send(
            app.client
                .post(app.url("/api/auth/register"))
                .header("content-type", "application/json; charset=utf-8")
                .body(REGISTER),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(users_named(&app, "simple@example.cl").await, 1);
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "Application/JSON;charset=utf-8")
                .body(gql_register.replace("simple@", "simple2@")),
        )
        .await;
    assert!(
        r.body["data"]["register"]["accessToken"].is_string(),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn multipart_and_csv_only_where_a_row_takes_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // Multipart on a JSON-only row (anonymous and as admin).
    let form = || {
        reqwest::multipart::Form::new()
            .text("name", "Simple Request")
            .text("email", "multipart@example.cl")
            .text("password", "secreto123")
    };
    let r = app
        .send(
            app.client
                .post(app.url("/api/auth/register"))
                .multipart(form()),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "multipart register",
    );
    assert_eq!(users_named(&app, "multipart@example.cl").await, 0);
    let r = app
        .send(
            app.client
                .post(app.url("/api/categories"))
                .bearer_auth(&admin)
                .multipart(reqwest::multipart::Form::new().text("name", "Formas")),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "multipart category",
    );
    // CSV on a JSON row.
    let r = app
        .send(
            app.client
                .post(app.url("/api/categories"))
                .bearer_auth(&admin)
                .header("content-type", "text/csv")
                .body("name\nFormas\n"),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "csv category",
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM categories WHERE name = 'Formas'")
            .await,
        0
    );
    // JSON on the multipart-only upload row.
    let r = app
        .post("/api/uploads/image", Some(&admin), json!({"url": "x"}))
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "json upload",
    );
    // The import row takes CSV (with a charset), and nothing else.
    let csv = "name,categorySlug,description,imageUrl,isActive,variantSku,variantLabel,variantPriceCents,variantStock\n\
               Importado,flores,,,true,EDGE-CSV-1,1 g,1000,5\n";
    let r = app
        .send(
            app.client
                .post(app.url("/api/products/import?dryRun=true"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(csv),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "json import",
    );
    let r = app
        .send(
            app.client
                .post(app.url("/api/products/import?dryRun=true"))
                .bearer_auth(&admin)
                .header("content-type", "text/csv; charset=utf-8")
                .body(csv),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["dryRun"], true, "{}", r.text);
}

#[tokio::test]
async fn bodiless_requests_need_no_content_type() {
    let app = TestApp::spawn().await;
    let (token, _, _) = app.register("bodiless@example.cl").await;
    let r = app
        .send(app.client.post(app.url("/api/cart")).bearer_auth(&token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["items"].is_array(), "{}", r.text);
    // Clients that label every request as JSON are fine too.
    let r = app
        .send(
            app.client
                .post(app.url("/api/cart"))
                .bearer_auth(&token)
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.delete("/api/cart", Some(&token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .call(
            Method::POST,
            "/api/orders/999999/cancel",
            Some(&token),
            None,
        )
        .await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        "not_found",
        "cancel unknown order",
    );
    let r = app
        .call(Method::POST, "/api/auth/logout", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

#[tokio::test]
async fn graphql_speaks_graphql_response_json_when_asked() {
    let app = TestApp::spawn().await;
    let ask = |accept: &'static str, query: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header("accept", accept)
            .json(&json!({ "query": query }))
    };
    let r = app
        .send(ask(
            "application/graphql-response+json, application/json;q=0.9",
            "{ categories { total } }",
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/graphql-response+json")
    );
    assert!(
        r.body["data"]["categories"]["total"].is_number(),
        "{}",
        r.text
    );
    // A request error: 400 and no `data` entry under the new media type...
    let r = app
        .send(ask("application/graphql-response+json", "{ categories { "))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body.get("data").is_none(), "{}", r.text);
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "validation_error",
        "{}",
        r.text
    );
    // ...200 under application/json, which stays the default.
    let r = app.send(ask("application/json", "{ categories { ")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = app.send(ask("*/*", "{ categories { total } }")).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    // A field error keeps `data` and 200.
    let r = app
        .send(ask("application/graphql-response+json", "{ me { id } }"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "unauthorized");
    assert!(r.body.get("data").is_some(), "{}", r.text);
}

/// `POST /graphql` takes exactly one GraphQL request: a JSON object with a non-empty `query`
/// string. Arrays (batches), scalars and ill-typed members are 400 before anything executes.
#[tokio::test]
async fn graphql_bodies_must_be_one_request_object() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!([]), "body", "batch_not_supported"),
        (json!(["AAA"]), "body", "batch_not_supported"),
        (json!("{ __typename }"), "body", "invalid_type"),
        (json!(1), "body", "invalid_type"),
        (json!({}), "query", "required"),
        (json!({"query": ""}), "query", "required"),
        (json!({"query": null}), "query", "required"),
        (json!({"query": 1}), "query", "invalid_type"),
        (
            json!({"query": "{ __typename }", "variables": [1]}),
            "variables",
            "invalid_type",
        ),
        (
            json!({"query": "{ __typename }", "operationName": 5}),
            "operationName",
            "invalid_type",
        ),
        (
            json!({"query": "{ __typename }", "extensions": "x"}),
            "extensions",
            "invalid_type",
        ),
    ];
    for (body, field, issue) in cases {
        let r = app.post_gql(None, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.error_code(), "validation_error", "{body}");
        assert!(r.has_detail(field, issue), "{body}: {}", r.text);
        assert_eq!(
            r.body["error"]["traceId"].as_str(),
            r.header("x-request-id"),
            "{body}"
        );
    }
    // Every optional member null or absent is fine.
    let r = app
        .post_gql(
            None,
            json!({"query": "{ __typename }", "operationName": null, "variables": null, "extensions": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["__typename"], "Query", "{}", r.text);
}

#[tokio::test]
async fn provider_webhooks_keep_their_form_posts() {
    let app = TestApp::spawn().await;
    let r = app
        .send(
            app.client
                .post(app.url("/webhooks/payments/test"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=abc"),
        )
        .await;
    assert_ne!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "unsigned test webhook",
    );
    assert_security_headers(&r, "webhook");
    let r = app
        .send(
            app.client
                .post(app.url("/webhooks/payments/flow/return"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=abc"),
        )
        .await;
    assert_ne!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_security_headers(&r, "flow return");
}

// ---------------------------------------------------------------------------------------------
// 6. Security headers.
// ---------------------------------------------------------------------------------------------

fn assert_security_headers(r: &Resp, what: &str) {
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    // A public read: revalidated by shared caches and browsers (see response_cache.rs).
    let r = app.get("/api/products", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_security_headers(&r, "public read");
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
    assert_eq!(r.header("strict-transport-security"), None, "not in test");
    // Errors: the fallback, a 401, a 405.
    for (r, what) in [
        (app.get("/nothing/here", None).await, "404"),
        (app.get("/api/me", None).await, "401"),
        (
            app.call(Method::PUT, "/api/auth/login", None, Some(json!({})))
                .await,
            "405",
        ),
    ] {
        assert!(r.status.is_client_error(), "{what}");
        assert_security_headers(&r, what);
    }
    // A token-issuing route.
    let login = app.login(CUSTOMER_EMAIL, CUSTOMER_PASSWORD).await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_security_headers(&r, "login");
    assert_eq!(r.header("cache-control"), Some("no-store"), "login");
    // Authenticated reads, REST and GraphQL (GET too).
    let token = customer_token(&login);
    let r = app.get("/api/me", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_security_headers(&r, "me");
    assert_eq!(r.header("cache-control"), Some("no-store"), "me");
    let r = app.get("/api/products", Some(&token)).await;
    assert_eq!(
        r.header("cache-control"),
        Some("private, no-store"),
        "signed-in catalogue"
    );
    let r = app.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert_security_headers(&r, "graphql");
    assert_eq!(r.header("cache-control"), Some("no-store"), "graphql");
    let r = app
        .send(
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", "{ me { id } }")])
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"), "graphql GET");
    // A handler's own caching wins: downloads stay private.
    let admin = app.admin_token().await;
    let r = app.get("/api/products/export", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("private, no-store"));
    assert_security_headers(&r, "export");
    // Pages, metrics and GraphiQL assets.
    for path in ["/docs/", "/metrics", "/openapi.json", "/healthz"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_security_headers(&r, path);
    }
    let r = app
        .send(
            app.client
                .get(app.url("/graphql"))
                .header("accept", "text/html"),
        )
        .await;
    assert_security_headers(&r, "graphiql");
    let r = app.get("/graphiql/assets/graphiql.min.css", None).await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=86400"));
    assert_security_headers(&r, "graphiql css");
    // A CORS preflight too.
    let r = app
        .send(
            app.client
                .request(Method::OPTIONS, app.url("/api/auth/login"))
                .header("origin", "http://localhost:5173")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_security_headers(&r, "preflight");
}

#[tokio::test]
async fn hsts_in_production_only_unless_configured() {
    let prod = TestApp::spawn_with(&[
        ("APP_ENV", "production"),
        ("SEED_ADMIN_PASSWORD", "Str0ng-Prod-Passw0rd"),
    ])
    .await;
    let hsts = Some("max-age=31536000");
    for path in ["/api/products", "/nothing/here"] {
        let r = prod.get(path, None).await;
        assert_eq!(r.header("strict-transport-security"), hsts, "{path}");
        assert_security_headers(&r, path);
    }
    let r = prod
        .post(
            "/api/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": "Str0ng-Prod-Passw0rd"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("strict-transport-security"), hsts, "login");
    assert_eq!(r.header("cache-control"), Some("no-store"), "login");
    let token = customer_token(&r.body);
    let r = prod.get("/api/me", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("strict-transport-security"), hsts, "me");
    assert_security_headers(&r, "me in production");
    let dev = TestApp::spawn_with(&[("APP_ENV", "development")]).await;
    assert_eq!(
        dev.get("/api/products", None)
            .await
            .header("strict-transport-security"),
        None
    );
    let staged = TestApp::spawn_with(&[("HSTS_MAX_AGE_SECONDS", "600")]).await;
    assert_eq!(
        staged
            .get("/healthz", None)
            .await
            .header("strict-transport-security"),
        Some("max-age=600")
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Early answers that clients writing their whole body first can read.
// ---------------------------------------------------------------------------------------------

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    /// Whether the same connection then answered a second request.
    reusable: bool,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Framing {
    Length,
    Chunked,
}

/// Reads one response (framed by its Content-Length) from the stream; `None` when the connection
/// closed before a whole response arrived.
async fn read_response(
    stream: &mut tokio::net::TcpStream,
) -> Option<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .expect("content-length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((status, headers, buf[head_end..head_end + length].to_vec()))
}

/// Writes the request head and the whole body before reading anything, like Python's urllib: a
/// write error fails the test. Then reads the response, and tries a second request on the same
/// connection unless the server said `Connection: close`.
async fn send_everything_then_read(
    app: &TestApp,
    head: &str,
    body: &[u8],
    framing: Framing,
) -> RawResponse {
    let addr = app.base.trim_start_matches("http://").to_string();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let framing_header = match framing {
            Framing::Length => format!("Content-Length: {}\r\n", body.len()),
            Framing::Chunked => "Transfer-Encoding: chunked\r\n".to_string(),
        };
        let request_head = format!("{head}Host: {addr}\r\n{framing_header}\r\n");
        stream
            .write_all(request_head.as_bytes())
            .await
            .expect("write head");
        match framing {
            Framing::Length => stream.write_all(body).await.expect("write the whole body"),
            Framing::Chunked => {
                for chunk in body.chunks(64 * 1024) {
                    stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await
                        .expect("write chunk size");
                    stream.write_all(chunk).await.expect("write chunk");
                    stream.write_all(b"\r\n").await.expect("write chunk end");
                }
                stream
                    .write_all(b"0\r\n\r\n")
                    .await
                    .expect("write last chunk");
            }
        }
        stream.flush().await.expect("flush");
        let (status, headers, body) = read_response(&mut stream)
            .await
            .expect("a whole response before the connection closed");
        let closing = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let reusable = !closing && {
            let again = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            stream.write_all(again.as_bytes()).await.is_ok()
                && read_response(&mut stream)
                    .await
                    .is_some_and(|(status, _, _)| status == 200)
        };
        RawResponse {
            status,
            headers,
            body: serde_json::from_slice(&body).expect("JSON body"),
            reusable,
        }
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("the exchange finished in time")
}

fn multipart_file(boundary: &str, field: &str, size: usize) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"big.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    let mut file = PNG_1X1.to_vec();
    file.resize(size, 0);
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn oversize_uploads_answer_413_to_clients_that_write_everything_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let boundary = "edge-boundary-7MA4YWxkTrZu0gW";
    let body = multipart_file(boundary, "file", 11 * 1024 * 1024);
    let head = format!(
        "POST /api/uploads/image HTTP/1.1\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n"
    );
    for framing in [Framing::Length, Framing::Chunked] {
        let r = send_everything_then_read(&app, &head, &body, framing).await;
        assert_eq!(r.status, 413, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "validation_error", "{}", r.body);
        assert_eq!(r.body["error"]["details"][0]["issue"], "too_large");
        assert_eq!(
            r.body["error"]["traceId"].as_str(),
            r.header("x-request-id"),
            "{}",
            r.body
        );
        assert!(r.reusable, "drained within the budget: {:?}", r.headers);
    }
    // GraphQL multipart uploads too.
    let mut gql = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n",
        json!({"query": "mutation($file: Upload!) { uploadImage(file: $file) { fileId } }", "variables": {"file": null}}),
        json!({"0": ["variables.file"]}),
    )
    .into_bytes();
    gql.extend_from_slice(&multipart_file(boundary, "0", 11 * 1024 * 1024));
    let head = format!(
        "POST /graphql HTTP/1.1\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n"
    );
    let r = send_everything_then_read(&app, &head, &gql, Framing::Length).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["error"]["details"][0]["issue"], "too_large");
    // An anonymous upload is refused before it is read, and the refusal is readable as well.
    let head = format!(
        "POST /api/uploads/image HTTP/1.1\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n"
    );
    let r = send_everything_then_read(&app, &head, &body, Framing::Length).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "unauthorized");
    assert!(r.reusable);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM files WHERE purpose = 'product_image'")
            .await,
        0,
        "nothing stored"
    );
    assert!(
        std::fs::read_dir(app.upload_dir.join("public")).map_or(true, |d| d.count() == 0),
        "no file left behind"
    );
}

#[tokio::test]
async fn oversize_json_answers_413_to_clients_that_write_everything_first() {
    let app = TestApp::spawn().await;
    let mut body = br#"{"email":"a@example.cl","password":""#.to_vec();
    body.resize(1024 * 1024 + 512 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    for (path, framing) in [
        ("/api/auth/login", Framing::Length),
        ("/api/auth/login", Framing::Chunked),
        ("/graphql", Framing::Length),
    ] {
        let head = format!("POST {path} HTTP/1.1\r\nContent-Type: application/json\r\n");
        let r = send_everything_then_read(&app, &head, &body, framing).await;
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "validation_error", "{path}");
        // The rest of the body was read and discarded: the connection stays usable.
        assert!(r.reusable, "{path}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn rest_uploads_take_files_up_to_the_documented_10_mb() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut file = PNG_1X1.to_vec();
    file.resize(5 * 1024 * 1024, 0);
    let r = app
        .send(
            app.client
                .post(app.url("/api/uploads/image"))
                .bearer_auth(&admin)
                .multipart(reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(file).file_name("large.png"),
                )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["sizeBytes"], 5 * 1024 * 1024);
    // JSON bodies keep their 1 MB limit on the same kind of row.
    let big = format!(
        r#"{{"docType":"receta","fileId":1,"x":"{}"}}"#,
        "y".repeat(1024 * 1024)
    );
    let (token, _, _) = app.register("bigjson@example.cl").await;
    let r = app
        .send(
            app.client
                .post(app.url("/api/medicinal/me/docs"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    assert_error(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "validation_error",
        "big JSON on an upload row",
    );
}
