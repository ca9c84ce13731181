//! Delivering webhooks. The outbox's `webhooks` subscriber turns each event into one delivery
//! per active endpoint subscribed to its type (unique per endpoint and event) and queues a
//! `webhook.deliver` job for it. A job makes one attempt: the address is resolved and checked
//! (`targets`), the body signed with every signing secret, POSTed with a 10 s timeout and no
//! redirects followed; the attempt is logged (status, latency, the answer's first KB).
//! A 2xx delivers it; 410 disables the endpoint; anything else is tried again after 1 min,
//! 5 min, 30 min, 1 h, 3 h, 6 h and 12 h (±20 %), 8 attempts over about a day, then the delivery
//! fails. An endpoint failing every attempt for 24 h is disabled. Deliveries of one aggregate
//! (an order, a product) to one endpoint go in order: a delivery waits while an earlier one of
//! its aggregate is pending, and each one that ends queues the next.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use super::{body, signing, targets, webhook_event, SOURCES};
use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::domain::Scope;
use crate::entities::{outbox_event, webhook_attempt, webhook_delivery, webhook_endpoint};
use crate::error::{AppError, AppResult};
use crate::services::platform::events::dispatch::{Interest, Subscriber};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::jobs::{self, Job, JobError, NewJob};
use crate::services::platform::pagination::Page;
use crate::state::AppState;

/// Attempts before a delivery fails.
pub const MAX_ATTEMPTS: i32 = 8;
/// The waits after each failed attempt, in seconds (±20 %).
const RETRY_AFTER: [i64; 7] = [60, 300, 1_800, 3_600, 10_800, 21_600, 43_200];
/// An endpoint failing every attempt this long is disabled.
pub const FAILING_LIMIT: Duration = Duration::hours(24);
/// How much of an answer the attempt log keeps.
const EXCERPT_BYTES: usize = 1024;
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// The outbox's subscriber that fans events out to endpoints.
pub struct WebhookSubscriber;

impl Subscriber for WebhookSubscriber {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn interest(&self) -> Interest {
        Interest::Only(SOURCES)
    }

    async fn deliver(&self, st: &AppState, event: &outbox_event::Model) -> Result<(), JobError> {
        let Some((kind, data)) = webhook_event(event) else {
            return Ok(());
        };
        let endpoints: Vec<webhook_endpoint::Model> = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::IsActive.eq(true))
            .order_by_asc(webhook_endpoint::Column::Id)
            .all(&st.db)
            .await?
            .into_iter()
            .filter(|e| e.event_types.split(' ').any(|t| t == kind))
            .collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let payload = body(kind, event, data);
        let aggregate = format!(
            "{}:{}",
            event.aggregate_type,
            event.aggregate_id.unwrap_or_default()
        );
        let now = st.clock.now();
        let txn = begin_write(&st.db).await?;
        for e in endpoints {
            let inserted = webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
                endpoint_id: Set(e.id),
                event_id: Set(event.id),
                event_type: Set(kind.to_string()),
                aggregate: Set(aggregate.clone()),
                payload: Set(payload.clone()),
                state: Set(PENDING.to_string()),
                attempts: Set(0),
                next_attempt_at: Set(now),
                last_status: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
                ..Default::default()
            })
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    webhook_delivery::Column::EndpointId,
                    webhook_delivery::Column::EventId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec(&txn)
            .await;
            match inserted {
                Ok(r) => queue(&txn, st, r.last_insert_id, "0", now).await?,
                Err(sea_orm::DbErr::RecordNotInserted) => {}
                Err(e) => return Err(e.into()),
            }
        }
        txn.commit().await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverPayload {
    pub delivery_id: i64,
}

/// One attempt at one delivery.
pub struct DeliverWebhook;

impl Job for DeliverWebhook {
    const KIND: &'static str = "webhook.deliver";
    type Payload = DeliverPayload;
    type Context = AppState;

    async fn run(&self, st: &AppState, p: DeliverPayload) -> Result<(), JobError> {
        let Some(d) = webhook_delivery::Entity::find_by_id(p.delivery_id)
            .one(&st.db)
            .await?
            .filter(|d| d.state == PENDING)
        else {
            return Ok(());
        };
        let Some(endpoint) = webhook_endpoint::Entity::find_by_id(d.endpoint_id)
            .one(&st.db)
            .await?
            .filter(|e| e.is_active)
        else {
            // Waits for the endpoint to be turned on again (`resume`).
            return Ok(());
        };
        let earlier = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(d.endpoint_id))
            .filter(webhook_delivery::Column::Aggregate.eq(d.aggregate.as_str()))
            .filter(webhook_delivery::Column::State.eq(PENDING))
            .filter(webhook_delivery::Column::Id.lt(d.id))
            .count(&st.db)
            .await?;
        if earlier > 0 {
            // The earlier one queues this when it ends.
            return Ok(());
        }
        let answer = attempt(st, &endpoint, &d).await?;
        settle(st, &endpoint, &d, answer).await?;
        Ok(())
    }
}

/// What an attempt came to.
struct Answer {
    status: Option<u16>,
    excerpt: Option<String>,
    error: Option<String>,
    latency_ms: i64,
    refused: bool,
}

async fn attempt(
    st: &AppState,
    endpoint: &webhook_endpoint::Model,
    d: &webhook_delivery::Model,
) -> Result<Answer, JobError> {
    let started = Instant::now();
    let failed = |error: String, refused: bool| Answer {
        status: None,
        excerpt: None,
        error: Some(error.chars().take(1000).collect()),
        latency_ms: started.elapsed().as_millis() as i64,
        refused,
    };
    let url = match url::Url::parse(&endpoint.url) {
        Ok(u) => u,
        Err(e) => return Ok(failed(format!("the URL does not parse: {e}"), true)),
    };
    let addr = match targets::resolve(&url, &st.config.webhooks).await {
        Ok(a) => a,
        Err(reason) => return Ok(failed(reason, true)),
    };
    let now = st.clock.now();
    let secrets = signing::signing_secrets(st, endpoint, now)?;
    let id = format!("msg_{}", d.event_id);
    let timestamp = now.timestamp();
    let signature = signing::signature_header(&secrets, &id, timestamp, d.payload.as_bytes())?;
    // Pinned to the address just checked: the name is not resolved again on the way.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(TIMEOUT)
        .resolve(url.host_str().unwrap_or_default(), addr)
        .build()
        .map_err(|e| JobError::Retry(format!("client: {e}")))?;
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "dispensary-webhooks/1")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    let mut res = match sent {
        Ok(r) => r,
        Err(e) => return Ok(failed(e.without_url().to_string(), false)),
    };
    let status = res.status().as_u16();
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
            _ => break,
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    let latency_ms = started.elapsed().as_millis() as i64;
    st.metrics
        .webhook_delivery_seconds
        .observe(latency_ms as f64 / 1000.0);
    Ok(Answer {
        status: Some(status),
        excerpt: Some(String::from_utf8_lossy(&excerpt).replace('\0', "\u{fffd}")),
        error: None,
        latency_ms,
        refused: false,
    })
}

/// Records the attempt and what follows from it, in one transaction.
async fn settle(
    st: &AppState,
    endpoint: &webhook_endpoint::Model,
    d: &webhook_delivery::Model,
    a: Answer,
) -> AppResult<()> {
    let now = st.clock.now();
    let ctx = RequestCtx::anonymous("webhooks".into(), std::net::Ipv4Addr::LOCALHOST.into());
    let txn = begin_write(&st.db).await?;
    webhook_attempt::ActiveModel {
        delivery_id: Set(d.id),
        attempted_at: Set(now),
        status: Set(a.status.map(i32::from)),
        latency_ms: Set(a.latency_ms),
        response_excerpt: Set(a.excerpt.clone()),
        error: Set(a.error.clone()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let attempts = d.attempts + 1;
    let mut am = d.clone().into_active_model();
    am.attempts = Set(attempts);
    am.last_status = Set(a.status.map(i32::from));
    am.last_error = Set(a.error.clone());
    let mut ep = endpoint.clone().into_active_model();
    let outcome = match a.status {
        Some(s) if (200..300).contains(&s) => {
            am.state = Set(DELIVERED.into());
            am.delivered_at = Set(Some(now));
            ep.failing_since = Set(None);
            "delivered"
        }
        Some(410) => {
            am.state = Set(FAILED.into());
            am.last_error = Set(Some("410 Gone: the endpoint was disabled".into()));
            disable(&txn, st, &ctx, &mut ep, "gone").await?;
            "gone"
        }
        _ => {
            if endpoint.failing_since.is_none() {
                ep.failing_since = Set(Some(now));
            } else if endpoint
                .failing_since
                .is_some_and(|since| now - since >= FAILING_LIMIT)
            {
                disable(&txn, st, &ctx, &mut ep, "failing").await?;
            }
            if attempts >= MAX_ATTEMPTS {
                am.state = Set(FAILED.into());
                "gave_up"
            } else {
                let at = now + retry_wait(attempts);
                am.next_attempt_at = Set(at);
                queue(&txn, st, d.id, &attempts.to_string(), at).await?;
                if a.refused {
                    "refused"
                } else {
                    "failed"
                }
            }
        }
    };
    am.update(&txn).await?;
    ep.update(&txn).await?;
    if outcome != "failed" && outcome != "refused" {
        queue_next(&txn, st, d, now).await?;
    }
    txn.commit().await?;
    st.metrics
        .webhook_deliveries
        .with_label_values(&[outcome])
        .inc();
    Ok(())
}

async fn disable<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    ep: &mut webhook_endpoint::ActiveModel,
    reason: &str,
) -> AppResult<()> {
    ep.is_active = Set(false);
    ep.disabled_reason = Set(Some(reason.into()));
    ep.updated_at = Set(st.clock.now());
    let id = *ep.id.as_ref();
    events::record(
        conn,
        st,
        ctx,
        DomainEvent::WebhookEndpointDisabled {
            id,
            reason: reason.into(),
        },
    )
    .await
}

/// The wait after `attempts` failed attempts, ±20 %.
fn retry_wait(attempts: i32) -> Duration {
    let base = RETRY_AFTER[(attempts.max(1) as usize - 1).min(RETRY_AFTER.len() - 1)];
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((base as f64 * 1000.0 * jitter) as i64)
}

/// Queues an attempt at delivery `id` (`tag` makes the job's key unique).
async fn queue<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    id: i64,
    tag: &str,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let job = NewJob::of::<DeliverWebhook>(&DeliverPayload { delivery_id: id })?
        .unique(format!("webhook:{id}:{tag}"))
        .max_attempts(jobs::DEFAULT_MAX_ATTEMPTS)
        .run_at(at);
    jobs::enqueue(conn, st.clock.now(), job).await?;
    Ok(())
}

/// Queues the next pending delivery of `d`'s endpoint and aggregate, now that `d` ended.
async fn queue_next<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    d: &webhook_delivery::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let next = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(d.endpoint_id))
        .filter(webhook_delivery::Column::Aggregate.eq(d.aggregate.as_str()))
        .filter(webhook_delivery::Column::State.eq(PENDING))
        .filter(webhook_delivery::Column::Id.gt(d.id))
        .order_by_asc(webhook_delivery::Column::Id)
        .one(conn)
        .await?;
    if let Some(n) = next {
        queue(
            conn,
            st,
            n.id,
            &format!("after{}", d.id),
            now.max(n.next_attempt_at),
        )
        .await?;
    }
    Ok(())
}

/// In the caller's transaction, as an endpoint is turned on again: its pending deliveries are
/// due now (each aggregate's first goes; the others follow it).
pub async fn resume<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    endpoint_id: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(now))
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .filter(webhook_delivery::Column::State.eq(PENDING))
        .exec(conn)
        .await?;
    let pending = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .filter(webhook_delivery::Column::State.eq(PENDING))
        .all(conn)
        .await?;
    for d in pending {
        queue(
            conn,
            st,
            d.id,
            &format!("resume{}", now.timestamp_millis()),
            now,
        )
        .await?;
    }
    Ok(())
}

/// A delivery with its attempt log, newest attempt last.
pub struct DeliveryView {
    pub delivery: webhook_delivery::Model,
    pub attempts: Vec<webhook_attempt::Model>,
}

/// `GET /api/admin/webhooks/{id}/deliveries`, newest first; `state` filters.
pub async fn list(
    st: &AppState,
    ctx: &RequestCtx,
    endpoint_id: i64,
    state: Option<String>,
    page: Page,
) -> AppResult<(Vec<DeliveryView>, u64)> {
    ctx.require_scope(Scope::WebhooksManage)?;
    webhook_endpoint::Entity::find_by_id(endpoint_id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Webhook endpoint"))?;
    let mut q = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id));
    if let Some(s) = state {
        if ![PENDING, DELIVERED, FAILED].contains(&s.as_str()) {
            return Err(AppError::invalid(
                "state",
                "invalid_value",
                "state is pending, delivered or failed",
            ));
        }
        q = q.filter(webhook_delivery::Column::State.eq(s));
    }
    let total = q.clone().count(&st.db).await?;
    let rows = q
        .order_by_desc(webhook_delivery::Column::Id)
        .offset(page.offset())
        .limit(page.page_size)
        .all(&st.db)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let mut attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.is_in(ids))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(&st.db)
        .await?;
    let views = rows
        .into_iter()
        .map(|d| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                attempts.drain(..).partition(|a| a.delivery_id == d.id);
            attempts = rest;
            DeliveryView {
                delivery: d,
                attempts: mine,
            }
        })
        .collect();
    Ok((views, total))
}

/// `POST /api/admin/webhook-deliveries/{id}/redeliver`: sent again now with a fresh set of
/// attempts, whatever became of it (409 while its endpoint is disabled).
pub async fn redeliver(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<DeliveryView> {
    ctx.require_scope(Scope::WebhooksManage)?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let d = webhook_delivery::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Webhook delivery"))?;
    let endpoint = webhook_endpoint::Entity::find_by_id(d.endpoint_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Webhook delivery"))?;
    if !endpoint.is_active {
        return Err(AppError::conflict_field(
            "endpoint",
            "endpoint_disabled",
            "Its endpoint is disabled: turn it on first (PATCH isActive: true)",
        ));
    }
    let tried = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.eq(id))
        .count(&txn)
        .await?;
    let mut am = d.clone().into_active_model();
    am.state = Set(PENDING.into());
    am.attempts = Set(0);
    am.next_attempt_at = Set(now);
    am.delivered_at = Set(None);
    let d = am.update(&txn).await?;
    queue(&txn, st, id, &format!("redeliver{tried}"), now).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::WebhookRedelivered {
            id,
            endpoint_id: d.endpoint_id,
        },
    )
    .await?;
    txn.commit().await?;
    let attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.eq(id))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(&st.db)
        .await?;
    Ok(DeliveryView {
        delivery: d,
        attempts,
    })
}
