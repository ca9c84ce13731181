//! The GraphQL schema: one Query and one Mutation merged from the domain modules.

pub mod addresses;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod consents;
pub mod coupons;
pub mod documents;
pub mod files;
pub mod guards;
pub mod input;
pub mod jobs;
pub mod limits;
pub mod loaders;
pub mod logs;
pub mod medicinal;
pub mod orders;
pub mod payments;
pub mod persisted;
pub mod privacy;
pub mod reviews;
pub mod scalars;
pub mod scopes;
pub mod sessions;
pub mod two_factor;
pub mod users;
pub mod webhooks;

use async_graphql::{Context, EmptySubscription, MergedObject, Schema};

use crate::actor::RequestCtx;
use crate::db;
use crate::error::AppError;
use crate::state::AppState;

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;
pub type GqlResult<T> = Result<T, AppError>;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    users::UsersQuery,
    api_keys::ApiKeysQuery,
    sessions::SessionsQuery,
    two_factor::TwoFactorQuery,
    consents::ConsentsQuery,
    privacy::PrivacyQuery,
    catalog::CatalogQuery,
    addresses::AddressesQuery,
    cart::CartQuery,
    checkout::CheckoutQuery,
    coupons::CouponsQuery,
    orders::OrdersQuery,
    payments::PaymentsQuery,
    medicinal::MedicinalQuery,
    logs::LogsQuery,
    jobs::JobsQuery,
    analytics::AnalyticsQuery,
    reviews::ReviewsQuery,
    webhooks::WebhooksQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    auth::AuthMutation,
    users::UsersMutation,
    api_keys::ApiKeysMutation,
    sessions::SessionsMutation,
    two_factor::TwoFactorMutation,
    consents::ConsentsMutation,
    privacy::PrivacyMutation,
    catalog::CatalogMutation,
    files::FilesMutation,
    addresses::AddressesMutation,
    cart::CartMutation,
    checkout::CheckoutMutation,
    coupons::CouponsMutation,
    orders::OrdersMutation,
    payments::PaymentsMutation,
    medicinal::MedicinalMutation,
    reviews::ReviewsMutation,
    jobs::JobsMutation,
    webhooks::WebhooksMutation,
);

/// Builds the schema. `state` is absent only when printing the SDL.
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    );
    if let Some(st) = state {
        // `limits::admit` counts depth with introspection apart; async-graphql's own depth check
        // stays as a backstop at the larger of the two bounds. A cost refusal is explained in
        // `execute` (no extension: see `limits`).
        builder = builder
            .limit_depth(
                st.config
                    .graphql
                    .max_depth
                    .max(limits::INTROSPECTION_MAX_DEPTH),
            )
            .limit_complexity(st.config.graphql.max_complexity)
            .data(st);
    }
    builder.finish()
}

/// The SDL written to `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None).sdl()
}

/// The app state and the request context every resolver needs. Both are always present: the HTTP
/// layer puts the request context in, and the schema is built with the state.
pub fn parts<'a>(ctx: &'a Context<'_>) -> (&'a AppState, &'a RequestCtx) {
    (
        ctx.data_unchecked::<AppState>(),
        ctx.data_unchecked::<RequestCtx>(),
    )
}

/// Executes an admitted request. A mutation with one root field whose change lost to a concurrent
/// one (a deadlock victim or serialization failure: rolled back whole, nothing written) is run
/// again, up to [`db::CONTENTION_ATTEMPTS`] times in all with a jittered pause; a document with
/// several root fields is not (an earlier field may have committed), and answers the 503.
async fn execute_retrying(
    schema: &AppSchema,
    state: &AppState,
    mut request: async_graphql::Request,
    rctx: RequestCtx,
) -> async_graphql::Response {
    let mut tries = 1;
    loop {
        let again = replayable(&mut request);
        let loader: loaders::RequestLoader = async_graphql::dataloader::DataLoader::with_cache(
            loaders::CatalogLoader::new(
                state.db.clone(),
                state.config.privacy.policy_version.clone(),
            ),
            tokio::spawn,
            async_graphql::dataloader::HashMapCache::default(),
        );
        let response = schema
            .execute(request.data(rctx.clone()).data(loader))
            .await;
        let contended = response
            .errors
            .iter()
            .any(|e| e.message == crate::error::CONTENTION_MESSAGE);
        match again {
            Some(next) if contended && tries < db::CONTENTION_ATTEMPTS => {
                state
                    .metrics
                    .db_contention
                    .with_label_values(&["retried"])
                    .inc();
                tokio::time::sleep(db::contention_pause(tries)).await;
                tries += 1;
                request = next;
            }
            _ => {
                if contended {
                    state
                        .metrics
                        .db_contention
                        .with_label_values(&["given_up"])
                        .inc();
                }
                return response;
            }
        }
    }
}

/// A copy of `request` to run again if it is a mutation with exactly one root field (and its
/// uploads can be read again); `None` otherwise.
fn replayable(request: &mut async_graphql::Request) -> Option<async_graphql::Request> {
    use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    let op = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str())?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    let single_field = matches!(
        op.node.selection_set.node.items.as_slice(),
        [one] if matches!(one.node, Selection::Field(_))
    );
    if op.node.ty != OperationType::Mutation || !single_field {
        return None;
    }
    let doc = doc.clone();
    let uploads = request
        .uploads
        .iter()
        .map(|u| u.try_clone())
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let mut copy =
        async_graphql::Request::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name = request.operation_name.clone();
    copy.uploads = uploads;
    copy.extensions = request.extensions.clone();
    copy.introspection_mode = request.introspection_mode;
    copy.set_parsed_query(doc);
    Some(copy)
}

/// Executes a request for a given request context, and completes every error's extensions with
/// a `code` (GraphQL parse and validation errors are `validation_error`) and the `traceId`.
/// Metrics count the operation by name when `labels` holds it (otherwise as `other`).
pub async fn execute(
    schema: &AppSchema,
    state: &AppState,
    labels: &std::collections::HashSet<&'static str>,
    request: async_graphql::Request,
    rctx: RequestCtx,
) -> async_graphql::Response {
    let operation = request.operation_name.clone();
    let trace_id = rctx.trace_id.clone();
    let (mut request, admitted) = limits::admit(request, &state.config, &rctx);
    let admitted = admitted.and_then(|()| input::check(&mut request));
    let mut response = match admitted {
        Ok(()) => {
            // Kept to explain a cost refusal, which only the document and its variables need.
            let (query, variables) = (request.query.clone(), request.variables.clone());
            let mut response = execute_retrying(schema, state, request, rctx).await;
            if limits::is_cost_refusal(&response.errors) {
                response.errors = limits::explain_cost(
                    &query,
                    variables,
                    operation.clone(),
                    state.config.graphql.max_complexity,
                )
                .await;
            }
            response
        }
        Err(refusal) => limits::refused(&refusal),
    };
    for err in response.errors.iter_mut() {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "validation_error");
            ext.set("details", Vec::<async_graphql::Value>::new());
        }
        ext.set("traceId", trace_id.clone());
    }
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    let op = operation
        .as_deref()
        .filter(|o| labels.contains(o))
        .unwrap_or("other");
    state
        .metrics
        .graphql_operations
        .with_label_values(&[op, outcome])
        .inc();
    response
}
