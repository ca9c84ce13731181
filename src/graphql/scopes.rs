//! What an API key may reach: the root fields open to a scope. A key's request is refused before
//! anything runs — on `/graphql` and on every REST row alike — when any operation of its document
//! selects a root field no scope opens (403 `api_key_not_allowed`) or one whose scope the key
//! lacks (403, the scope named in `details[0].field`, issue `missing_scope`). Customer operations
//! (cart, checkout, `my*`), medicinal documents, health data, account administration and the
//! keys themselves are open to no scope. The guards (`ScopeGuard`) and services
//! (`RequestCtx::require_scope`) check again; nested fields that need an administrator refuse a key.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::actor::{key_refused, missing_scope, ApiKeyPrincipal};
use crate::domain::Scope;
use crate::error::AppError;

/// Every root field a key may select, with the scope that opens it.
pub const OPEN_TO_KEYS: &[(&str, Scope)] = &[
    // The catalogue as an admin sees it (inactive and medicinal products included).
    ("categories", Scope::ProductsRead),
    ("products", Scope::ProductsRead),
    ("product", Scope::ProductsRead),
    ("productVariants", Scope::ProductsRead),
    ("productReviews", Scope::ProductsRead),
    ("exportProducts", Scope::ProductsRead),
    ("lowStock", Scope::ProductsRead),
    ("createProduct", Scope::ProductsWrite),
    ("updateProduct", Scope::ProductsWrite),
    ("deleteProduct", Scope::ProductsWrite),
    ("createVariant", Scope::ProductsWrite),
    ("updateVariant", Scope::ProductsWrite),
    ("deleteVariant", Scope::ProductsWrite),
    ("importProducts", Scope::ProductsWrite),
    ("adminOrders", Scope::OrdersRead),
    ("order", Scope::OrdersRead),
    ("orderInvoice", Scope::OrdersRead),
    ("adminPayments", Scope::OrdersRead),
    ("updateOrderStatus", Scope::OrdersWrite),
    ("updateOrderTracking", Scope::OrdersWrite),
    ("users", Scope::CustomersRead),
    ("user", Scope::CustomersRead),
    ("webhooks", Scope::WebhooksManage),
    ("webhook", Scope::WebhooksManage),
    ("webhookDeliveries", Scope::WebhooksManage),
    ("createWebhook", Scope::WebhooksManage),
    ("updateWebhook", Scope::WebhooksManage),
    ("deleteWebhook", Scope::WebhooksManage),
    ("rotateWebhookSecret", Scope::WebhooksManage),
    ("redeliverWebhook", Scope::WebhooksManage),
];

/// The scope that opens root field `name` to a key, if one does.
pub fn scope_of(name: &str) -> Option<Scope> {
    OPEN_TO_KEYS
        .iter()
        .find(|(field, _)| *field == name)
        .map(|(_, scope)| *scope)
}

/// Refuses `doc` for `key` unless every root field of every operation in it is open to one of
/// the key's scopes (`__typename` always is; introspection is decided by `GRAPHQL_INTROSPECTION`).
pub fn admit_key(doc: &ExecutableDocument, key: &ApiKeyPrincipal) -> Result<(), AppError> {
    let mut names = Vec::new();
    for (_, op) in doc.operations.iter() {
        root_fields(
            doc,
            &op.node.selection_set.node,
            &mut Vec::new(),
            &mut names,
        );
    }
    for name in names {
        if name.starts_with("__") {
            continue;
        }
        match scope_of(&name) {
            None => {
                let mut e = key_refused();
                e.message = format!("{} (`{name}` is open to no API key scope)", e.message);
                return Err(e);
            }
            Some(scope) if !key.holds(scope) => return Err(missing_scope(scope)),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The root field names of a selection set, fragments expanded (each at most once).
fn root_fields(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    spreads: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    for sel in &set.items {
        match &sel.node {
            Selection::Field(f) => out.push(f.node.name.node.to_string()),
            Selection::InlineFragment(fr) => {
                root_fields(doc, &fr.node.selection_set.node, spreads, out)
            }
            Selection::FragmentSpread(sp) => {
                let name = sp.node.fragment_name.node.to_string();
                if spreads.contains(&name) {
                    continue;
                }
                if let Some(def) = doc.fragments.get(&sp.node.fragment_name.node) {
                    spreads.push(name);
                    root_fields(doc, &def.node.selection_set.node, spreads, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[Scope]) -> ApiKeyPrincipal {
        ApiKeyPrincipal {
            id: 1,
            public_id: "ak_test".into(),
            scopes: scopes.to_vec(),
        }
    }

    fn admit(query: &str, scopes: &[Scope]) -> Result<(), AppError> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        admit_key(&doc, &key(scopes))
    }

    #[test]
    fn a_key_reaches_only_root_fields_its_scopes_open_fragments_included() {
        assert!(admit("{ adminOrders { total } __typename }", &[Scope::OrdersRead]).is_ok());
        let e = admit("{ adminOrders { total } }", &[Scope::ProductsRead]).unwrap_err();
        assert_eq!(e.details[0].field, "orders:read");
        assert_eq!(e.details[0].issue, "missing_scope");
        let e = admit(
            "query { ...F } fragment F on QueryRoot { ... on QueryRoot { cart { id } } }",
            &Scope::ALL,
        )
        .unwrap_err();
        assert_eq!(e.details[0].issue, "api_key_not_allowed");
        assert!(e.message.contains("`cart`"));
        let e = admit(
            "query A { products { total } } mutation B { createProduct(input: {}) { id } }",
            &[Scope::ProductsRead],
        )
        .unwrap_err();
        assert_eq!(e.details[0].field, "products:write");
    }
}
