//! GraphQL limits: list-weighted cost, aliases, depth (introspection apart), who may introspect.
//!
//! The legitimate queries are the heaviest a storefront and an admin send (the REST operation
//! documents where they fit, at their largest page sizes); their measured costs are pinned here
//! and listed in the README. The introspection fixtures are graphql-js's `getIntrospectionQuery()`
//! output, byte for byte, with descriptions, specifiedByUrl, directiveIsRepeatable,
//! schemaDescription and inputValueDeprecation on: from graphql 16.6.0 (`ofType` nested 7 deep)
//! and 16.15.0 (9 deep); and what the vendored GraphiQL 3.9 sends (graphql 16.9, default options).

use dispensary::graphql::limits::{measure, Measure};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{variant_id, Resp, TestApp};

const INTROSPECTION_16_6: &str = include_str!("fixtures/introspection-graphql-js-16.6.0.graphql");
const INTROSPECTION_16_15: &str = include_str!("fixtures/introspection-graphql-js-16.15.0.graphql");
/// What the vendored GraphiQL 3.9 sends on load (captured from the browser check).
const INTROSPECTION_GRAPHIQL: &str = include_str!("fixtures/introspection-graphiql-3.9.0.graphql");

macro_rules! fragments {
    ($($f:literal),*) => {
        concat!($(include_str!(concat!("../../src/rest/operations/fragments/", $f))),*)
    };
}

const PRODUCT_FRAGMENTS: &str = fragments!(
    "product_fields.graphql",
    "category_fields.graphql",
    "variant_fields.graphql"
);

const DEFAULT_MAX_COMPLEXITY: usize = 25_000;
const DEFAULT_MAX_DEPTH: usize = 12;

/// One legitimate request: who sends it, the document, its variables and its pinned cost.
struct Legit {
    name: &'static str,
    actor: Actor,
    query: String,
    variables: Value,
    cost: usize,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Actor {
    Anonymous,
    Customer,
    Admin,
}

fn legitimate(product_id: i64, variant: i64) -> Vec<Legit> {
    vec![
        Legit {
            name: "storefront: product list page, 100 products with variants, category and rating",
            actor: Actor::Anonymous,
            query: format!(
                "{}{PRODUCT_FRAGMENTS}",
                include_str!("../../src/rest/operations/catalog/products.graphql")
            ),
            variables: json!({"pageSize": 100}),
            cost: 12_701,
            depth: 4,
        },
        Legit {
            name: "storefront: product page with 100 reviews",
            actor: Actor::Anonymous,
            query: format!(
                "{}{PRODUCT_FRAGMENTS}",
                include_str!("fixtures/product-page.graphql")
            ),
            variables: json!({"id": product_id}),
            cost: 1_325,
            depth: 3,
        },
        Legit {
            name: "customer: cart",
            actor: Actor::Customer,
            query: format!(
                "{}{}",
                include_str!("../../src/rest/operations/commerce/cart.graphql"),
                fragments!("cart_fields.graphql")
            ),
            variables: json!({}),
            cost: 116,
            depth: 3,
        },
        Legit {
            name: "customer: checkout preview",
            actor: Actor::Customer,
            query: include_str!("../../src/rest/operations/commerce/checkout_preview.graphql")
                .to_string(),
            variables: json!({"input": {
                "items": [{"variantId": variant, "quantity": 1}],
                "address": {"addressLine": "Av. Providencia 1234", "comuna": "Providencia", "region": "RM"},
                "shippingMethod": "chilexpress"
            }}),
            cost: 90,
            depth: 3,
        },
        Legit {
            name: "admin: orders page, 100 orders with their lines",
            actor: Actor::Admin,
            query: format!(
                "{}{}",
                include_str!("../../src/rest/operations/commerce/admin_orders.graphql"),
                fragments!("order_fields.graphql")
            ),
            variables: json!({"pageSize": 100}),
            cost: 10_201,
            depth: 4,
        },
        Legit {
            name: "admin: dashboard (sales by day over 366 days, top 100 products, orders by status, low stock)",
            actor: Actor::Admin,
            query: include_str!("fixtures/dashboard.graphql").to_string(),
            variables: json!({}),
            cost: 3_890,
            depth: 3,
        },
    ]
}

async fn measured(query: &str, variables: &Value) -> Measure {
    measure(
        query,
        async_graphql::Variables::from_json(variables.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("measuring failed: {e:?}"))
}

/// The GraphQL error at `errors[0]`, checked against the error model: its code, a `details`
/// entry, and a `traceId` equal to the response's `X-Request-Id`; no data.
fn assert_refused(r: &Resp, code: &str, issue: &str) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let errors = r.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{}", r.text);
    let ext = &errors[0]["extensions"];
    assert_eq!(ext["code"], code, "{}", r.text);
    assert_eq!(
        ext["details"],
        json!([{"field": "query", "issue": issue}]),
        "{}",
        r.text
    );
    assert_eq!(
        ext["traceId"].as_str(),
        r.header("x-request-id"),
        "{}",
        r.text
    );
    assert!(
        r.body["data"].is_null(),
        "refused before execution: {}",
        r.text
    );
    errors[0]["message"].as_str().expect("message").to_string()
}

fn bomb(aliases: usize, page_size: usize) -> String {
    let fields: String = (0..aliases)
        .map(|i| format!("p{i}: products(pageSize: {page_size}) {{ items {{ id name variants {{ id }} }} }} "))
        .collect();
    format!("{{ {fields}}}")
}

#[tokio::test]
async fn legitimate_queries_cost_what_the_readme_says_and_run() {
    let app = TestApp::spawn().await;
    let variant = variant_id(&app, "NL-AUTO-1G").await;
    let product_id = app
        .scalar_i64(&format!(
            "SELECT product_id FROM product_variants WHERE id = {variant}"
        ))
        .await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    for q in legitimate(product_id, variant) {
        let m = measured(&q.query, &q.variables).await;
        assert_eq!(
            (m.complexity, m.shape.depth, m.shape.aliases),
            (q.cost, q.depth, 0),
            "{}: cost, depth, aliases (update the README's table with a deliberate change)",
            q.name
        );
        assert!(
            m.complexity * 3 / 2 <= DEFAULT_MAX_COMPLEXITY && m.shape.depth < DEFAULT_MAX_DEPTH,
            "{}: the defaults keep at least half again as much headroom",
            q.name
        );
        let token = match q.actor {
            Actor::Anonymous => None,
            Actor::Customer => Some(customer.as_str()),
            Actor::Admin => Some(admin.as_str()),
        };
        let r = app.gql(token, &q.query, q.variables.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", q.name, r.text);
        assert!(r.body["errors"].is_null(), "{}: {}", q.name, r.text);
        let data = r.body["data"].as_object().expect("data");
        assert!(
            !data.is_empty() && data.values().all(|v| v.is_object()),
            "{}: {}",
            q.name,
            r.text
        );
    }
    // The product list really carries the variants and ratings that the cost assumes.
    let r = app
        .gql(
            None,
            &format!(
                "{}{PRODUCT_FRAGMENTS}",
                include_str!("../../src/rest/operations/catalog/products.graphql")
            ),
            json!({"pageSize": 100}),
        )
        .await;
    let items = r.body["data"]["products"]["items"]
        .as_array()
        .expect("items");
    assert!(
        items.iter().any(|p| p["variants"][0]["id"].is_i64()),
        "{}",
        r.text
    );
    assert!(
        items.iter().all(|p| p["rating"]["count"].is_i64()),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn list_sizes_weigh_in_the_cost_and_bombs_are_refused_before_execution() {
    let app = TestApp::spawn().await;
    // Each alias costs 1 + 100 × (items 1 + id 1 + name 1 + variants (1 + 10 × 1)) = 1,401.
    let m = measured(&bomb(300, 100), &json!({})).await;
    assert_eq!(m.complexity, 420_300);
    assert_eq!(measured(&bomb(1, 20), &json!({})).await.complexity, 281);
    let before = app.metric("graphql_operations_total", "").await;

    // The issue's request: 300 aliases of a 100-product page. The alias limit refuses it first.
    let r = app.gql(None, &bomb(300, 100), json!({})).await;
    let message = assert_refused(&r, "validation_error", "too_many_aliases");
    assert_eq!(
        message,
        "Query has too many aliases: the limit is 30 (GRAPHQL_MAX_ALIASES)"
    );

    // Within the alias limit, 30 such pages cost 42,030: over the cost limit, with both numbers.
    let r = app.gql(None, &bomb(30, 100), json!({})).await;
    let message = assert_refused(&r, "validation_error", "too_complex");
    assert!(
        message.starts_with(
            "Query is too complex: its cost is 42030, the limit is 25000 (GRAPHQL_MAX_COMPLEXITY)."
        ),
        "{message}"
    );
    // The same through a variable: the cost follows the value sent.
    let r = app
        .gql(
            None,
            "query($n: Int) { a: products(pageSize: $n) { items { id name variants { id } } } }",
            json!({"n": 100}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    // Small pages of the same shape pass: the size, not the shape, was the problem.
    let r = app.gql(None, &bomb(30, 1), json!({})).await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert_eq!(
        r.body["data"]["p29"]["items"].as_array().map(Vec::len),
        Some(1)
    );

    // With aliases allowed, the 300-alias request is refused on its cost.
    let lax = TestApp::spawn_with(&[("GRAPHQL_MAX_ALIASES", "1000")]).await;
    let r = lax.gql(None, &bomb(300, 100), json!({})).await;
    let message = assert_refused(&r, "validation_error", "too_complex");
    assert!(
        message.contains("its cost is 420300, the limit is 25000"),
        "{message}"
    );
    // Fragments are counted where they are spread: 40 aliases in a fragment spread twice.
    let aliases: String = (0..20).map(|i| format!("a{i}: __typename ")).collect();
    let r = app
        .gql(
            None,
            &format!("{{ ...F x: products {{ ...G }} }} fragment F on Query {{ {aliases} }} fragment G on ProductPage {{ {aliases} }}"),
            json!({}),
        )
        .await;
    assert_refused(&r, "validation_error", "too_many_aliases");
    // The refusals were counted as failed operations and nothing else ran.
    let after = app.metric("graphql_operations_total", "").await;
    assert!(after >= before + 2.0, "{before} -> {after}");
}

#[tokio::test]
async fn batches_stay_refused() {
    let app = TestApp::spawn().await;
    let r = app
        .call(
            reqwest::Method::POST,
            "/graphql",
            None,
            Some(json!([{"query": "{ __typename }"}, {"query": "{ __typename }"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.error_code(), "validation_error");
    assert_eq!(
        r.body["error"]["traceId"].as_str(),
        r.header("x-request-id")
    );
}

async fn assert_introspects(app: &TestApp, token: Option<&str>, query: &str) {
    let r = app.gql(token, query, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let schema = &r.body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query", "{}", r.text);
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    let types = schema["types"].as_array().expect("types");
    let product = types
        .iter()
        .find(|t| t["name"] == "Product")
        .expect("Product");
    assert!(product["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .any(|f| f["name"] == "variants"));
    // `[Variant!]!` arrives whole through the TypeRef chain.
    let variants = product["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "variants"))
        .expect("variants");
    assert_eq!(variants["type"]["kind"], "NON_NULL");
    assert_eq!(variants["type"]["ofType"]["kind"], "LIST");
    assert_eq!(
        variants["type"]["ofType"]["ofType"]["ofType"]["name"],
        "Variant"
    );
    assert!(schema["directives"]
        .as_array()
        .expect("directives")
        .iter()
        .any(|d| d["name"] == "skip"));
}

#[tokio::test]
async fn graphql_js_introspection_succeeds_while_deep_ordinary_queries_fail() {
    let app = TestApp::spawn().await;
    // Depth under __schema and cost, as listed in the README.
    for (query, depth, cost) in [
        (INTROSPECTION_16_6, 13, 190),
        (INTROSPECTION_16_15, 15, 229),
        (INTROSPECTION_GRAPHIQL, 15, 217),
    ] {
        let m = measured(query, &json!({})).await;
        assert_eq!(
            (m.shape.introspection_depth, m.shape.depth, m.complexity),
            (depth, 0, cost)
        );
        assert_introspects(&app, None, query).await;
        // Over GET as well, as some tools send it.
        let r = app
            .send(
                app.client
                    .get(app.url("/graphql"))
                    .query(&[("query", query)]),
            )
            .await;
        assert!(
            r.body["data"]["__schema"]["types"].is_array(),
            "{}",
            &r.text[..200.min(r.text.len())]
        );
    }

    // 30 levels of ordinary selections: refused on depth before anything else is looked at (no
    // valid selection of this schema nests deeper than 4, so field names are not what stops it).
    let deep = format!(
        "{{ {}products {{ items {{ id }} }}{} }}",
        "products { items { category { ".repeat(9),
        " } } }".repeat(9)
    );
    let r = app.gql(None, &deep, json!({})).await;
    let message = assert_refused(&r, "validation_error", "too_deep");
    assert_eq!(
        message,
        "Query is nested too deep: the limit is 12 levels (GRAPHQL_MAX_DEPTH)"
    );
    // 12 levels is the limit, 13 is over; counted the same way through fragments.
    let r = app
        .gql(
            None,
            &format!(
                "{{ ...F }} fragment F on Query {{ {}id{} }}",
                "a { ".repeat(12),
                " }".repeat(12)
            ),
            json!({}),
        )
        .await;
    assert_refused(&r, "validation_error", "too_deep");
    // Introspection keeps graphql-js's fan-out rule: a third nested `fields` is refused.
    let r = app
        .gql(
            None,
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
            json!({}),
        )
        .await;
    let message = assert_refused(&r, "validation_error", "too_deep");
    assert!(
        message.starts_with("Maximum introspection depth exceeded"),
        "{message}"
    );
    // ... and its own depth bound.
    let chain = format!(
        "{{ __type(name: \"Product\") {{ {}name{} }} }}",
        "ofType { ".repeat(20),
        " }".repeat(20)
    );
    let r = app.gql(None, &chain, json!({})).await;
    assert_refused(&r, "validation_error", "too_deep");
}

#[tokio::test]
async fn introspection_for_admins_only() {
    let app = TestApp::spawn_with(&[("GRAPHQL_INTROSPECTION", "admin")]).await;
    let admin = app.admin_token().await;
    let (customer, _, _) = app.register("curioso@example.cl").await;

    let r = app.gql(None, INTROSPECTION_16_15, json!({})).await;
    let message = assert_refused(&r, "unauthorized", "introspection_not_allowed");
    assert!(
        message.contains("administrators") && message.contains("schema.graphql"),
        "{message}"
    );
    let r = app
        .gql(Some(&customer), INTROSPECTION_16_15, json!({}))
        .await;
    assert_refused(&r, "forbidden", "introspection_not_allowed");
    // A token that is not accepted is an anonymous caller, told why.
    let r = app
        .gql(Some("not-a-token"), INTROSPECTION_16_15, json!({}))
        .await;
    let message = assert_refused(&r, "unauthorized", "introspection_not_allowed");
    assert!(message.ends_with(". Introspection (__schema, __type) is for administrators (the schema is published as schema.graphql)"), "{message}");
    assert!(!message.starts_with("Introspection"), "{message}");
    // `__type` is introspection too, also behind a fragment.
    let r = app
        .gql(
            Some(&customer),
            "{ ...F } fragment F on Query { __type(name: \"User\") { name } }",
            json!({}),
        )
        .await;
    assert_refused(&r, "forbidden", "introspection_not_allowed");
    // Over GET as well.
    let r = app
        .send(
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", "{ __schema { queryType { name } } }")]),
        )
        .await;
    assert_refused(&r, "unauthorized", "introspection_not_allowed");

    assert_introspects(&app, Some(&admin), INTROSPECTION_16_6).await;
    assert_introspects(&app, Some(&admin), INTROSPECTION_16_15).await;

    // `__typename` is not introspection: everyone keeps it.
    for token in [None, Some(customer.as_str())] {
        let r = app
            .gql(
                token,
                "{ __typename products(pageSize: 1) { __typename } }",
                json!({}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.text);
        assert_eq!(r.body["data"]["__typename"], "Query");
        assert_eq!(r.body["data"]["products"]["__typename"], "ProductPage");
    }
}

#[tokio::test]
async fn introspection_off_for_everyone() {
    let app = TestApp::spawn_with(&[("GRAPHQL_INTROSPECTION", "off")]).await;
    let admin = app.admin_token().await;
    for token in [None, Some(admin.as_str())] {
        let r = app.gql(token, INTROSPECTION_16_6, json!({})).await;
        let message = assert_refused(&r, "forbidden", "introspection_not_allowed");
        assert!(message.contains("disabled"), "{message}");
        let r = app.gql(token, "{ __typename }", json!({})).await;
        assert_eq!(r.body["data"]["__typename"], "Query", "{}", r.text);
    }
}

#[tokio::test]
async fn introspection_public_by_default_outside_production() {
    let app = TestApp::spawn().await;
    let (customer, _, _) = app.register("publico@example.cl").await;
    assert_introspects(&app, None, INTROSPECTION_16_15).await;
    assert_introspects(&app, Some(&customer), INTROSPECTION_16_6).await;
}
