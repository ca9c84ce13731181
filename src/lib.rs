//! dispensary: the GraphQL-first backend of a Chilean online dispensary.
//!
//! Layers (data flows down): HTTP (`http`, `rest`) → GraphQL (`graphql`) → services → entities.

pub mod actor;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod error;
pub mod graphql;
pub mod http;
pub mod infra;
pub mod metrics;
pub mod rest;
pub mod seed;
pub mod services;
pub mod state;
pub mod trace_id;
pub mod util;

use axum::Router;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Connects to the database, applies migrations unless `AUTO_MIGRATE=false`, and builds the router.
pub async fn build_app(config: Config, clock: Clock) -> anyhow::Result<(Router, AppState)> {
    let metrics = Metrics::new();
    let db = db::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.plan_cache_mode,
        &metrics,
    )
    .await?;
    if config.database.auto_migrate {
        db::migrate(&db).await?;
    }
    let storage = infra::storage::Storage::new(&config.storage)
        .map_err(|e| anyhow::anyhow!("file storage: {e}"))?;
    let state = AppState::new(db, config, clock, metrics, storage);
    state.install_jobs(services::composition::registry(&state.config));
    state.install_reactions(services::composition::reactions());
    let schema = graphql::build_schema(Some(state.clone()));
    let app = http::App::new(state.clone(), schema, rest::operation_names());
    let router = http::router(app, rest::router(), rest::openapi::document());
    Ok((router, state))
}
