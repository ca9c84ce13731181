//! Generated artefacts stay in sync, REST documents are valid against the schema, and production
//! configuration refuses weak secrets.

use std::process::Command;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn schema_graphql_is_in_sync() {
    let generated = dispensary::graphql::sdl();
    assert!(
        repo_file("schema.graphql") == generated,
        "schema.graphql is stale: run `cargo run -- print-schema > schema.graphql`"
    );
}

#[test]
fn openapi_yaml_is_in_sync() {
    let generated = dispensary::rest::openapi::yaml();
    assert!(
        repo_file("openapi.yaml") == generated,
        "openapi.yaml is stale: run `cargo run -- print-openapi > openapi.yaml`"
    );
}

#[test]
fn openapi_documents_every_rest_route_with_examples() {
    let doc = serde_json::to_value(dispensary::rest::openapi::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for route in dispensary::rest::routes() {
        let op = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from OpenAPI",
            route.method,
            route.path
        );
        assert_eq!(op["operationId"], route.operation);
        if let Some(body) = &route.body {
            let content = &op["requestBody"]["content"][body.content_type];
            if body.content_type == "application/json" {
                assert!(
                    content["schema"]["$ref"].is_string(),
                    "{} {}",
                    route.method,
                    route.path
                );
                assert!(
                    content["example"].is_object(),
                    "{} {} request example",
                    route.method,
                    route.path
                );
            } else {
                assert!(
                    content["example"].is_string(),
                    "{} {} request example",
                    route.method,
                    route.path
                );
            }
        }
        if let Some(upload) = &route.upload {
            let form = &op["requestBody"]["content"]["multipart/form-data"]["schema"];
            assert!(
                form["properties"][upload.file_field].is_object(),
                "{} {} multipart",
                route.method,
                route.path
            );
        }
        let ok = &op["responses"][route.success.as_str()];
        assert!(
            ok.is_object(),
            "{} {} success response",
            route.method,
            route.path
        );
        if let Some(file) = route.raw_response {
            let content = &ok["content"][file.content_type];
            assert!(content.is_object(), "{} {}", route.method, route.path);
            if file.base64 {
                assert_eq!(content["schema"]["format"], "binary", "{}", route.path);
            }
        } else if route.response.is_some() {
            assert!(
                ok["content"]["application/json"]["example"].is_object(),
                "{} {} response example",
                route.method,
                route.path
            );
        }
        assert!(
            op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap()
                .ends_with("ErrorBody")
        );
    }
    for schema in [
        "User",
        "UserPage",
        "AuthPayload",
        "RegisterInput",
        "ErrorBody",
        "FieldIssue",
        "Role",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
}

/// Every REST operation document parses, names its operation, and passes the schema's validation.
#[tokio::test]
async fn rest_operation_documents_validate_against_the_schema() {
    use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
    use std::sync::Arc;

    /// Stops after validation: nothing is resolved.
    struct DryRun;
    struct DryRunExt;
    impl ExtensionFactory for DryRun {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(DryRunExt)
        }
    }
    #[async_graphql::async_trait::async_trait]
    impl Extension for DryRunExt {
        async fn execute(
            &self,
            _ctx: &ExtensionContext<'_>,
            _op: Option<&str>,
            _next: NextExecute<'_>,
        ) -> async_graphql::Response {
            async_graphql::Response::new(async_graphql::Value::Null)
        }
    }

    let sdl_schema = dispensary::graphql::build_schema(None);
    let _ = sdl_schema; // the real schema type, used below with the dry-run extension
    let schema = async_graphql::Schema::build(
        dispensary::graphql::QueryRoot::default(),
        dispensary::graphql::MutationRoot::default(),
        async_graphql::EmptySubscription,
    )
    .extension(DryRun)
    .finish();
    for route in dispensary::rest::routes() {
        let doc = async_graphql::parser::parse_query(route.document)
            .unwrap_or_else(|e| panic!("{}: {e}", route.operation));
        assert!(
            doc.operations
                .iter()
                .any(|(name, _)| name.map(|n| n.as_str()) == Some(route.operation)),
            "{} is not defined in its document",
            route.operation
        );
        let r = schema
            .execute(async_graphql::Request::new(route.document).operation_name(route.operation))
            .await;
        let invalid: Vec<_> = r
            .errors
            .iter()
            .filter(|e| !e.message.contains("is not defined") || e.message.contains("Unknown"))
            .collect();
        assert!(invalid.is_empty(), "{}: {:?}", route.operation, invalid);
    }
    // And a broken document is caught by the same check.
    let r = schema
        .execute(async_graphql::Request::new(
            "query Bad { me { noSuchField } }",
        ))
        .await;
    assert!(!r.errors.is_empty());
}

#[test]
fn production_refuses_to_start_with_a_weak_or_missing_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_dispensary"))
        .arg("serve")
        .env_clear()
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "too-short")
        .env("SEED_ADMIN_PASSWORD", "Str0ngAdminPassw0rd")
        .env("DATABASE_URL", "sqlite::memory:")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_dispensary"))
        .env_clear()
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "a-secret-of-more-than-thirty-two-bytes-0123")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SEED_ADMIN_PASSWORD"));

    // TOTP secrets are sealed with DATA_ENCRYPTION_KEY: production does not start without one.
    let out = Command::new(env!("CARGO_BIN_EXE_dispensary"))
        .arg("serve")
        .env_clear()
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "a-secret-of-more-than-thirty-two-bytes-0123")
        .env("SEED_ADMIN_PASSWORD", "Str0ngAdminPassw0rd")
        .env("DATABASE_URL", "sqlite::memory:")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATA_ENCRYPTION_KEY is required in production"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_dispensary"))
        .env_clear()
        .env("ACCESS_TOKEN_TTL_SECONDS", "soon")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ACCESS_TOKEN_TTL_SECONDS"));
}

/// Every rule of the constraint table (src/rest/constraints.rs) lands on a property of a fitting
/// type: a renamed field or schema cannot silently drop a documented limit.
#[test]
fn every_constraint_rule_is_stated_in_the_document() {
    let unapplied = dispensary::rest::openapi::unapplied_constraints();
    assert!(unapplied.is_empty(), "rules with no target: {unapplied:?}");
    let doc = serde_json::to_value(dispensary::rest::openapi::document()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let register = &schemas["RegisterInput"]["properties"];
    assert_eq!(register["email"]["format"], "email");
    assert_eq!(register["email"]["maxLength"], 254);
    assert_eq!(register["password"]["minLength"], 8);
    assert_eq!(register["password"]["maxLength"], 128);
    assert_eq!(register["rut"]["format"], "rut");
    assert_eq!(schemas["RegisterInput"]["additionalProperties"], false);
    assert_eq!(schemas["CouponInput"]["properties"]["code"]["minLength"], 3);
    assert_eq!(
        schemas["CouponInput"]["properties"]["code"]["maxLength"],
        40
    );
    assert_eq!(schemas["LineInput"]["properties"]["quantity"]["minimum"], 1);
    assert_eq!(
        schemas["CartItemInput"]["properties"]["quantity"]["minimum"],
        0
    );
    assert_eq!(
        schemas["CartItemInput"]["properties"]["quantity"]["maximum"],
        dispensary::services::commerce::cart::MAX_LINE_QUANTITY
    );
    let regions = schemas["AddressInput"]["properties"]["region"]["enum"]
        .as_array()
        .unwrap();
    assert!(regions.contains(&serde_json::json!("RM")));
    assert!(regions.contains(&serde_json::json!("Valparaíso")));
    // The product review and the medicinal review are two schemas, not one under one name.
    assert_eq!(schemas["ReviewInput"]["properties"]["rating"]["maximum"], 5);
    assert!(schemas["ReviewMedicinalDocumentInput"]["properties"]["status"].is_object());
    // Every integer a body or a query carries is bounded (the server parses i64).
    for (name, schema) in schemas.as_object().unwrap() {
        if !name.ends_with("Input") {
            continue;
        }
        for (prop, p) in schema["properties"].as_object().into_iter().flatten() {
            let is_int = p["type"] == "integer"
                || p["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&serde_json::json!("integer")));
            if is_int {
                assert!(
                    p["minimum"].is_i64() && p["maximum"].is_i64(),
                    "{name}.{prop} is unbounded"
                );
            }
        }
    }
}

/// Statuses and media types beyond the success: credentials, body limits, content types, rate
/// limits and downloads.
#[test]
fn openapi_states_every_status_and_media_type() {
    let doc = serde_json::to_value(dispensary::rest::openapi::document()).unwrap();
    let paths = &doc["paths"];
    for path in ["/api/auth/login", "/api/auth/refresh"] {
        let op = &paths[path]["post"];
        assert!(op["responses"]["401"].is_object(), "{path} 401");
        let retry = &op["responses"]["429"]["headers"]["Retry-After"];
        assert_eq!(retry["schema"]["type"], "integer", "{path} Retry-After");
    }
    for route in dispensary::rest::routes() {
        let op = &paths[route.path][route.method.as_str().to_lowercase()];
        if route.body.is_some() || route.upload.is_some() {
            for status in ["413", "415"] {
                assert!(
                    op["responses"][status]["content"]["application/json"].is_object(),
                    "{} {} {status}",
                    route.method,
                    route.path
                );
            }
        }
        if route.access != dispensary::rest::Access::Public {
            assert!(op["responses"]["401"].is_object(), "{}", route.path);
            assert!(op["responses"]["403"].is_object(), "{}", route.path);
        }
    }
    let invoice = &paths["/api/orders/{id}/invoice"]["get"]["responses"]["200"]["content"];
    assert!(invoice["application/pdf"].is_object());
    let export = &paths["/api/products/export"]["get"]["responses"]["200"]["content"];
    assert!(export
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("text/csv")));
    let file = &paths["/api/files/{id}"]["get"];
    for kind in ["application/pdf", "image/jpeg", "image/png", "image/webp"] {
        assert!(
            file["responses"]["200"]["content"][kind].is_object(),
            "file {kind}"
        );
    }
    // Signed URLs work without a token: anonymous access is one of the security options.
    assert!(file["security"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_object().is_some_and(|o| o.is_empty())));
}

/// The server refuses exactly outside the documented bounds of every bounded integer query
/// parameter: the bounds are accepted, one past them is `400` naming the parameter.
#[tokio::test]
async fn documented_query_bounds_are_the_enforced_bounds() {
    use crate::helpers::TestApp;
    use reqwest::StatusCode;

    let doc = serde_json::to_value(dispensary::rest::openapi::document()).unwrap();
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let product = app.get("/api/products", None).await.body["items"][0]["id"]
        .as_i64()
        .expect("a seeded product");
    let webhook = app
        .post(
            "/api/admin/webhooks",
            Some(&admin),
            serde_json::json!({"url": "https://erp.example.cl/hooks", "eventTypes": ["order.paid"]}),
        )
        .await
        .body["id"]
        .as_i64()
        .expect("a webhook endpoint");
    let mut checked = std::collections::BTreeSet::new();
    let mut page_size_routes = 0;
    for route in dispensary::rest::routes() {
        if route.method != axum::http::Method::GET || route.query.is_none() {
            continue;
        }
        let op = &doc["paths"][route.path]["get"];
        let path = if route.path.starts_with("/api/admin/webhooks/") {
            route.path.replace("{id}", &webhook.to_string())
        } else {
            route.path.replace("{id}", &product.to_string())
        };
        for p in op["parameters"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            if p["in"] != "query" || !p["schema"]["minimum"].is_i64() {
                continue;
            }
            let (min, max) = (
                p["schema"]["minimum"].as_i64().unwrap(),
                p["schema"]["maximum"].as_i64().unwrap(),
            );
            if name == "pageSize" {
                page_size_routes += 1;
                assert_eq!((min, max), (1, 100), "{}", route.path);
            }
            if name == "page" {
                assert_eq!(min, 1, "{}", route.path);
            }
            let mut cases = Vec::new();
            if min > i64::MIN {
                cases.push((min, true));
                cases.push((min - 1, false));
            }
            if max < i64::MAX {
                cases.push((max, true));
                cases.push((max + 1, false));
            }
            for (value, ok) in cases {
                let r = app
                    .get(&format!("{path}?{name}={value}"), Some(&admin))
                    .await;
                if ok {
                    assert!(
                        r.status.is_success(),
                        "{} {name}={value}: {} {}",
                        route.path,
                        r.status,
                        r.text
                    );
                } else {
                    assert_eq!(
                        r.status,
                        StatusCode::BAD_REQUEST,
                        "{} {name}={value}: {}",
                        route.path,
                        r.text
                    );
                    let names_it = r.body["error"]["details"]
                        .as_array()
                        .is_some_and(|d| d.iter().any(|x| x["field"] == name));
                    assert!(names_it, "{}", r.text);
                }
            }
            checked.insert(name.to_string());
        }
    }
    assert!(page_size_routes >= 10, "{page_size_routes}");
    for name in ["page", "pageSize", "days", "limit", "threshold", "priceMin"] {
        assert!(
            checked.contains(name),
            "{name} was not checked: {checked:?}"
        );
    }
}

/// A JSON body that is valid JSON but not an object (serde would read a struct from an array)
/// is 400 on every JSON route, and changes nothing.
#[tokio::test]
async fn json_bodies_that_are_not_objects_are_refused_everywhere() {
    use crate::helpers::TestApp;
    use dispensary::rest::Access;
    use reqwest::StatusCode;

    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let name_before = app.get("/api/me", Some(&customer)).await.body["name"].clone();
    let users_before = app.scalar_i64("SELECT COUNT(*) FROM users").await;
    let mut routes = 0;
    for route in dispensary::rest::routes() {
        let Some(body) = &route.body else { continue };
        if body.content_type != "application/json" {
            continue;
        }
        routes += 1;
        let token = match route.access {
            Access::Public => None,
            Access::Customer => Some(customer.as_str()),
            Access::Admin => Some(admin.as_str()),
        };
        for raw in ["[null, null]", "[]", "\"text\"", "12", "null", "true"] {
            let mut req = app
                .client
                .request(
                    route.method.clone(),
                    app.url(&route.path.replace("{id}", "1")),
                )
                .header("content-type", "application/json")
                .body(raw);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = app.send(req).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{} {} {raw}: {}",
                route.method,
                route.path,
                r.text
            );
            assert!(r.has_detail("body", "invalid_type"), "{raw}: {}", r.text);
        }
    }
    assert!(routes >= 25, "{routes}");
    assert_eq!(
        app.get("/api/me", Some(&customer)).await.body["name"],
        name_before
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users").await,
        users_before
    );
}

/// JSON has one number type: an integral float is the integer (as the schema's `integer` says),
/// a fractional one is refused; extreme but documented values answer instead of crashing.
#[tokio::test]
async fn integral_floats_are_integers_and_extreme_values_answer() {
    use crate::helpers::TestApp;
    use reqwest::StatusCode;
    use serde_json::json;

    let app = TestApp::spawn().await;
    let customer = app.customer_token().await;
    let products = app.get("/api/products", None).await;
    let variant = products.body["items"][0]["variants"][0]["id"]
        .as_i64()
        .expect("a seeded variant");
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&customer),
            Some(json!({"variantId": variant as f64, "quantity": 2.0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT CAST(quantity AS BIGINT) FROM cart_items WHERE variant_id = {variant}"
        ))
        .await,
        2
    );
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/cart/items",
            Some(&customer),
            Some(json!({"variantId": variant, "quantity": 2.5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.has_detail("quantity", "invalid_type"), "{}", r.text);
    // Past i64 is refused, not rounded into range (serde_json reads such literals as floats).
    for raw in [
        r#"{"variantId": -9223372036854775809, "quantity": 0}"#,
        r#"{"variantId": 9223372036854775808, "quantity": 0}"#,
        r#"{"variantId": 1e19, "quantity": 0}"#,
    ] {
        let r = app
            .send(
                app.client
                    .put(app.url("/api/cart/items"))
                    .bearer_auth(&customer)
                    .header("content-type", "application/json")
                    .body(raw),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{raw}: {}", r.text);
        assert!(r.has_detail("variantId", "invalid_type"), "{}", r.text);
    }

    // The last documented page is empty, not an error (the database OFFSET is capped).
    let r = app
        .get(
            &format!("/api/categories?page={}&pageSize=100", i64::MAX),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));
    assert!(r.body["total"].as_i64().unwrap() > 0);

    // A RUT ending in a multi-byte character is invalid, not a crash (a C1 control character is
    // refused before the RUT is read, as in any text).
    for (rut, issue) in [
        ("\u{84}", "control_character"),
        ("1234567\u{e9}", "invalid_rut"),
    ] {
        let r = app
            .post(
                "/api/auth/register",
                None,
                json!({"name": "Ana", "email": "ana.rut@example.cl", "password": "secreto123", "rut": rut}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.has_detail("rut", issue), "{}", r.text);
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE email = 'ana.rut@example.cl'")
            .await,
        0
    );
}
