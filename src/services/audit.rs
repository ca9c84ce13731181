//! The audit trail (`system_logs`). Every state change and security event writes one row.
//! `meta` never holds secrets, passwords or tokens.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::Value;

use crate::actor::RequestCtx;
use crate::clock::Clock;
use crate::entities::system_log;
use crate::error::AppResult;

pub struct Entry {
    pub action: &'static str,
    pub entity: &'static str,
    pub entity_id: Option<i64>,
    pub meta: Value,
    /// Defaults to the request's signed-in user.
    pub actor_user_id: Option<i64>,
}

impl Entry {
    pub fn new(action: &'static str, entity: &'static str, entity_id: Option<i64>) -> Self {
        Entry {
            action,
            entity,
            entity_id,
            meta: Value::Object(Default::default()),
            actor_user_id: None,
        }
    }

    pub fn meta(mut self, meta: Value) -> Self {
        self.meta = meta;
        self
    }

    pub fn actor(mut self, user_id: i64) -> Self {
        self.actor_user_id = Some(user_id);
        self
    }
}

pub async fn record<C: ConnectionTrait>(
    conn: &C,
    clock: &Clock,
    ctx: &RequestCtx,
    entry: Entry,
) -> AppResult<()> {
    system_log::ActiveModel {
        actor_user_id: Set(entry.actor_user_id.or(ctx.user_id())),
        action: Set(entry.action.to_string()),
        entity: Set(entry.entity.to_string()),
        entity_id: Set(entry.entity_id),
        meta: Set(entry.meta),
        trace_id: Set(Some(ctx.trace_id.clone())),
        created_at: Set(clock.now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}
