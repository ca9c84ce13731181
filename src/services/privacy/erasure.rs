//! Erasure of a customer's account (Ley 21.719: supresión).
//!
//! `POST /api/me/deletion-request` (password, and a code with two-factor on) records a
//! `privacy_requests` row of kind `erasure`, ends every session at once and refuses sign-in from
//! then on, and schedules a `privacy.erasure` job at the end of the grace period
//! (`ERASURE_GRACE_DAYS`). Until it runs, the customer may cancel with their email and password
//! (`DELETE /api/me/deletion-request`), which restores the account as it was; an admin may have
//! it run earlier. An order still pending payment or on its way blocks the erasure until it ends.
//!
//! The job mails the address a last time, then in one transaction deletes what the store has no
//! reason to keep (addresses, carts, sessions, links, two-factor, profile, medicinal documents
//! and every private file, review texts, idempotent answers, the queued and finished mail to the
//! address), keeps what the tax law requires (`LEGAL_RETENTION_YEARS`: orders, their items,
//! amounts, payments and receipts) under a pseudonym `cliente-<random>`, turns the user row into a
//! tombstone with no personal field, and replaces the customer's personal values wherever the
//! audit log, the outbox or the payment providers' stored answers repeat them.

use std::collections::BTreeSet;

use async_graphql::InputObject;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::order::OrderStatus;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::user::Role;
use crate::entities::{
    account_link, address, auth_token, cart, cart_item, consent, credential_attempt, file,
    idempotency_key, job, medicinal_document, order, outbox_event, payment, payment_event,
    product_review, recovery_code, session, system_log, user, user_profile, user_two_factor,
};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::services::accounts::{auth, erasing, lockout, sessions, two_factor};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::files;
use crate::services::platform::jobs::{self, Job, JobError, NewJob};
use crate::services::privacy::requests;
use crate::state::AppState;

/// `POST /api/me/deletion-request`: re-authentication for erasing the account.
#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"password": "cannabis123"}))]
pub struct DeletionRequestInput {
    /// The account's password.
    pub password: String,
    /// With two-factor sign-in on: a current 6-digit code or an unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `DELETE /api/me/deletion-request`: sign-in is refused during the grace period, so the
/// cancellation proves who asks with the account's credentials.
#[derive(InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "ana@example.cl", "password": "cannabis123"}))]
pub struct CancelDeletionInput {
    pub email: String,
    pub password: String,
    /// With two-factor sign-in on: a current 6-digit code or an unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The unique key of the job that erases for request `id`.
pub(crate) fn job_key(id: i64) -> String {
    format!("{}:{id}", EraseAccount::KIND)
}

/// The customer's orders that are not over yet (pending payment, paid and not yet delivered):
/// they need the customer's name and address, so they block the erasure.
async fn unfinished_orders<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Vec<order::Model>> {
    Ok(order::Entity::find()
        .filter(order::Column::UserId.eq(user_id))
        .filter(order::Column::Status.is_in([
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Shipped,
        ]))
        .order_by_asc(order::Column::Id)
        .all(conn)
        .await?)
}

/// 409 `orders_in_progress` naming the orders that must end first, one detail per order
/// (`orders.<id>`: `pending_payment` / `not_delivered`).
fn blocked_by(orders: &[order::Model]) -> AppError {
    let ids: Vec<String> = orders.iter().map(|o| o.id.to_string()).collect();
    AppError::new(
        crate::error::ErrorCode::Conflict,
        format!(
            "The account cannot be erased while orders {} are still pending payment or delivery; ask again once they end",
            ids.join(", ")
        ),
    )
    .with_details(
        orders
            .iter()
            .map(|o| {
                let issue = if o.status == OrderStatus::Pending {
                    "pending_payment"
                } else {
                    "not_delivered"
                };
                FieldIssue::new(format!("orders.{}", o.id), issue)
            })
            .collect(),
    )
}

/// The customer's latest erasure request that has not run (pending, or failed and not retried).
async fn cancellable<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> AppResult<Option<privacy_request::Model>> {
    Ok(erasing::erasure_requests(user_id)
        .filter(privacy_request::Column::State.ne(PrivacyRequestState::Ready))
        .order_by_desc(privacy_request::Column::Id)
        .one(conn)
        .await?)
}

fn already_requested() -> AppError {
    AppError::conflict_field(
        "deletionRequest",
        "erasure_requested",
        "The erasure of this account was already asked for",
    )
}

/// Asks for the signed-in customer's account to be erased after the grace period: 202 with the
/// request. Every session ends at once and sign-in is refused until it is cancelled.
pub async fn request(
    st: &AppState,
    ctx: &RequestCtx,
    input: DeletionRequestInput,
) -> AppResult<privacy_request::Model> {
    let me = ctx.require_user()?.clone();
    if me.role != Role::Customer {
        return Err(AppError::forbidden(
            "Staff accounts are closed by another admin, not erased on request",
        ));
    }
    auth::limit_ip(st, ctx)?;
    auth::check_own_password(st, me.id, &input.password, "password").await?;
    // A wrong code counts towards the account's lockout (taken before the transaction, settled
    // after it: the code is spent inside it, so a refusal below spends nothing).
    let attempt = lockout::take(st, me.id, lockout::Kind::SecondFactor).await?;
    let mut proved = false;
    let outcome = request_reauthenticated(st, ctx, &me, &input, &mut proved).await;
    attempt.settle(st, proved).await?;
    outcome
}

async fn request_reauthenticated(
    st: &AppState,
    ctx: &RequestCtx,
    me: &crate::actor::AuthUser,
    input: &DeletionRequestInput,
    proved: &mut bool,
) -> AppResult<privacy_request::Model> {
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    // Under the user's row: a checkout at the same moment either committed its order before
    // (and blocks this request, below) or finds the request and refuses (`checkout::confirm`).
    crate::services::accounts::users::lock(&txn, me.id).await?;
    two_factor::reauthenticate(&txn, st, me.id, input.code.as_deref()).await?;
    *proved = true;
    if erasing::open_request(&txn, me.id).await?.is_some() {
        return Err(already_requested());
    }
    let unfinished = unfinished_orders(&txn, me.id).await?;
    if !unfinished.is_empty() {
        return Err(blocked_by(&unfinished));
    }
    let scheduled = now + Duration::days(st.config.erasure_grace_days);
    let inserted = privacy_request::ActiveModel {
        user_id: Set(me.id),
        kind: Set(PrivacyRequestKind::Erasure),
        state: Set(PrivacyRequestState::Pending),
        requested_at: Set(now),
        due_at: Set(now + Duration::days(st.config.privacy_request_due_days)),
        completed_at: Set(None),
        // An erasure: when the grace period ends and it runs.
        expires_at: Set(Some(scheduled)),
        storage_key: Set(None),
        size_bytes: Set(None),
        error: Set(None),
        downloads: Set(0),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => already_requested(),
        _ => AppError::from(e),
    })?;
    jobs::enqueue(
        &txn,
        now,
        NewJob::of::<EraseAccount>(&ErasurePayload {
            request_id: inserted.id,
            trace_id: ctx.trace_id.clone(),
        })?
        .unique(job_key(inserted.id))
        .run_at(scheduled)
        // Waiting for an order to end is a retry: give it room.
        .max_attempts(20),
    )
    .await?;
    user::Entity::update_many()
        .col_expr(user::Column::ErasureRequestedAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(me.id))
        .exec(&txn)
        .await?;
    let ended = sessions::end_counted(&txn, st, me.id, None).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ErasureRequested {
            id: me.id,
            request_id: inserted.id,
            scheduled_for: scheduled,
            sessions: ended,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Cancels a pending erasure within the grace period, with the account's email and password (and
/// a code with two-factor on): the account is usable again, nothing having been deleted. 401 on
/// wrong credentials, 404 without a pending erasure, 409 once it is running.
pub async fn cancel(st: &AppState, ctx: &RequestCtx, input: CancelDeletionInput) -> AppResult<()> {
    auth::limit_ip(st, ctx)?;
    let email = input.email.trim().to_lowercase();
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .filter(user::Column::ErasedAt.is_null())
        .one(&st.db)
        .await?;
    let attempt = match &found {
        Some(u) => Some(lockout::take(st, u.id, lockout::Kind::Password).await?),
        None => None,
    };
    let ok = st
        .passwords
        .verify(
            &input.password,
            found.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    if let Some(a) = attempt {
        a.settle(st, ok).await?;
    }
    let u = match found {
        Some(u) if ok && u.is_active && u.deleted_at.is_none() => u,
        other => {
            let reason = match &other {
                None => "unknown_email",
                Some(_) if !ok => "wrong_password",
                Some(_) => "account_disabled",
            };
            return Err(auth::login_failed(st, ctx, &email, other.map(|u| u.id), reason).await?);
        }
    };
    let attempt = lockout::take(st, u.id, lockout::Kind::SecondFactor).await?;
    let mut proved = false;
    let outcome = cancel_reauthenticated(st, ctx, &u, &input, &mut proved).await;
    attempt.settle(st, proved).await?;
    outcome
}

async fn cancel_reauthenticated(
    st: &AppState,
    ctx: &RequestCtx,
    u: &user::Model,
    input: &CancelDeletionInput,
    proved: &mut bool,
) -> AppResult<()> {
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    two_factor::reauthenticate(&txn, st, u.id, input.code.as_deref()).await?;
    *proved = true;
    crate::services::privacy::data_export::settle_failed(&txn, st, Some(u.id)).await?;
    let r = cancellable(&txn, u.id)
        .await?
        .ok_or_else(|| AppError::not_found("Deletion request"))?;
    // Conditional on the state: a job that started meanwhile wins.
    let removed = privacy_request::Entity::delete_many()
        .filter(privacy_request::Column::Id.eq(r.id))
        .filter(
            privacy_request::Column::State
                .is_in([PrivacyRequestState::Pending, PrivacyRequestState::Failed]),
        )
        .exec(&txn)
        .await?;
    if removed.rows_affected != 1 {
        return Err(AppError::conflict_field(
            "deletionRequest",
            "erasure_in_progress",
            "The erasure is already running and can no longer be cancelled",
        ));
    }
    job::Entity::delete_many()
        .filter(job::Column::UniqueKey.eq(job_key(r.id)))
        .filter(job::Column::State.ne(crate::entities::job::JobState::Running))
        .exec(&txn)
        .await?;
    user::Entity::update_many()
        .col_expr(
            user::Column::ErasureRequestedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(u.id))
        .exec(&txn)
        .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ErasureCancelled {
            id: u.id,
            request_id: r.id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Admin: runs a pending erasure now instead of at the end of its grace period; answers the
/// request as it stands afterwards (`ready`, or still `pending` with `error` naming the orders
/// it waits for).
pub async fn process_now(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
) -> AppResult<privacy_request::Model> {
    ctx.require_admin()?;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    let r = privacy_request::Entity::find_by_id(id)
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Erasure))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Erasure request"))?;
    if !matches!(
        r.state,
        PrivacyRequestState::Pending | PrivacyRequestState::Failed
    ) {
        return Err(AppError::conflict_field(
            "state",
            "not_pending",
            format!("The erasure request is {:?}, not pending", r.state).to_lowercase(),
        ));
    }
    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::State,
            Expr::value(PrivacyRequestState::Pending),
        )
        .col_expr(
            privacy_request::Column::Error,
            Expr::value(Option::<String>::None),
        )
        .col_expr(privacy_request::Column::ExpiresAt, Expr::value(now))
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    // Waiting (queued, or retrying after an order blocked it) or given up: it runs now, with a
    // fresh set of attempts.
    job::Entity::update_many()
        .col_expr(
            job::Column::State,
            Expr::value(crate::entities::job::JobState::Queued),
        )
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::Attempts, Expr::value(0))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::UniqueKey.eq(job_key(id)))
        .filter(job::Column::State.is_in([
            crate::entities::job::JobState::Queued,
            crate::entities::job::JobState::Failed,
            crate::entities::job::JobState::Dead,
        ]))
        .exec(&txn)
        .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::ErasureExpedited {
            id: r.user_id,
            request_id: id,
        },
    )
    .await?;
    txn.commit().await?;
    jobs::run_now_by_key(st, &EraseAccount, &job_key(id)).await?;
    privacy_request::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Erasure request"))
}

/// The job that erases an account once its grace period is over.
pub struct EraseAccount;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasurePayload {
    pub request_id: i64,
    /// The request's trace id, for the audit rows the job writes.
    pub trace_id: String,
}

impl Job for EraseAccount {
    const KIND: &'static str = "privacy.erasure";
    type Context = AppState;
    type Payload = ErasurePayload;

    async fn run(&self, st: &AppState, p: ErasurePayload) -> Result<(), JobError> {
        // Cancelled (the row is gone) or done: nothing to do.
        let Some(r) =
            requests::open_for_work(&st.db, p.request_id, PrivacyRequestKind::Erasure).await?
        else {
            return Ok(());
        };
        let Some(u) = user::Entity::find_by_id(r.user_id).one(&st.db).await? else {
            return Ok(());
        };
        let now = st.clock.now();
        let unfinished = unfinished_orders(&st.db, u.id).await?;
        if !unfinished.is_empty() {
            let msg = blocked_by(&unfinished).message;
            note(st, r.id, PrivacyRequestState::Pending, Some(&msg), now).await?;
            return Err(JobError::Retry(msg));
        }
        // From here on it can no longer be cancelled.
        if !requests::claim_for_processing(&st.db, r.id, now).await? {
            return Ok(());
        }
        if u.erased_at.is_none() {
            farewell(st, &u).await?;
        }
        let ctx = RequestCtx::anonymous(p.trace_id, std::net::Ipv4Addr::LOCALHOST.into());
        let removed = erase(st, &ctx, &u, &r).await?;
        for path in removed {
            files::discard(&path).await;
        }
        Ok(())
    }
}

/// Records where a request stands (`error`: why it waits or failed).
async fn note(
    st: &AppState,
    id: i64,
    state: PrivacyRequestState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    privacy_request::Entity::update_many()
        .col_expr(privacy_request::Column::State, Expr::value(state))
        .col_expr(
            privacy_request::Column::Error,
            Expr::value(error.map(|e| e.chars().take(500).collect::<String>())),
        )
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(id))
        .exec(&st.db)
        .await?;
    Ok(())
}

/// The last mail to the address, sent before it is erased (so that no job row keeps it). A
/// transient failure retries the erasure; an address the server refuses for good is erased
/// without it.
async fn farewell(st: &AppState, u: &user::Model) -> Result<(), JobError> {
    let sent = crate::services::notifications::mail::SendMail
        .run(
            st,
            crate::services::notifications::mail::MailPayload {
                // Not queued: its Message-ID comes from its content, the same when the erasure
                // is retried (an account is erased once).
                message_id: None,
                ..crate::services::notifications::mail::MailPayload::new(
                    st,
                    "account_erased",
                    u.email.clone(),
                    serde_json::json!({
                        "customer": {"name": u.name},
                        "retentionYears": st.config.legal_retention_years,
                    }),
                )
            },
        )
        .await;
    match sent {
        Err(JobError::Fatal(e)) => {
            tracing::warn!(error = %e, "the farewell mail could not be sent; erasing anyway");
            Ok(())
        }
        other => other,
    }
}

/// `cliente-` and 12 random hex digits.
fn pseudonym() -> String {
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("cliente-{}", hex::encode(b))
}

/// Replaces every needle in every string of `v`; whether anything changed.
fn scrub(v: &mut Value, needles: &[String], with: &str) -> bool {
    match v {
        Value::String(s) => {
            let mut changed = false;
            for n in needles {
                if s.contains(n.as_str()) {
                    *s = s.replace(n.as_str(), with);
                    changed = true;
                }
            }
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |acc, x| scrub(x, needles, with) | acc),
        Value::Object(o) => o
            .values_mut()
            .fold(false, |acc, x| scrub(x, needles, with) | acc),
        _ => false,
    }
}

/// The personal values to replace, and their replacement.
struct Scrub<'a> {
    needles: &'a [String],
    alias: &'a str,
}

impl Scrub<'_> {
    /// Rewrites the JSON `column` of the rows `which` selects where it holds a needle.
    async fn rows<E: EntityTrait>(
        &self,
        conn: &impl ConnectionTrait,
        which: sea_orm::Select<E>,
        id: E::Column,
        column: E::Column,
    ) -> AppResult<()> {
        let rows: Vec<(i64, Option<Value>)> = which
            .select_only()
            .column(id)
            .column(column)
            .into_tuple()
            .all(conn)
            .await?;
        for (row, value) in rows {
            let Some(mut value) = value else { continue };
            if scrub(&mut value, self.needles, self.alias) {
                E::update_many()
                    .col_expr(column, Expr::value(value))
                    .filter(id.eq(row))
                    .exec(conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Deletes the rows of `E` whose `owner` column is `uid`.
async fn delete_rows<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    owner: E::Column,
    uid: i64,
) -> AppResult<()> {
    E::delete_many().filter(owner.eq(uid)).exec(conn).await?;
    Ok(())
}

/// `CAST(<col> AS TEXT) LIKE '%<needle>%'` for any of the needles.
fn mentions(col: impl sea_orm::sea_query::IntoColumnRef + Clone, needles: &[String]) -> Condition {
    needles.iter().fold(Condition::any(), |c, n| {
        c.add(
            SimpleExpr::from(Func::cast_as(
                Expr::col(col.clone()),
                sea_orm::sea_query::Alias::new("TEXT"),
            ))
            .like(format!("%{n}%")),
        )
    })
}

/// Deletes and pseudonymizes the customer's data in one transaction; the paths of the files to
/// remove from storage once it committed.
async fn erase(
    st: &AppState,
    ctx: &RequestCtx,
    u: &user::Model,
    r: &privacy_request::Model,
) -> AppResult<Vec<std::path::PathBuf>> {
    let now = st.clock.now();
    let uid = u.id;
    let alias = pseudonym();
    let txn = begin_write(&st.db).await?;

    // What identifies the customer, wherever it was copied: every address they used, name, RUT,
    // phone, street addresses.
    let profile = user_profile::Entity::find()
        .filter(user_profile::Column::UserId.eq(uid))
        .one(&txn)
        .await?;
    let addresses = address::Entity::find()
        .filter(address::Column::UserId.eq(uid))
        .all(&txn)
        .await?;
    let links = account_link::Entity::find()
        .filter(account_link::Column::UserId.eq(uid))
        .all(&txn)
        .await?;
    let mut emails: BTreeSet<String> = BTreeSet::from([u.email.clone()]);
    for l in &links {
        emails.insert(l.email.clone());
        emails.extend(l.previous_email.clone());
    }
    let mut needles: BTreeSet<String> = emails.clone();
    needles.insert(u.name.clone());
    needles.extend(u.rut.clone());
    if let Some(p) = &profile {
        needles.extend(p.phone.clone());
        needles.extend(p.address.clone());
    }
    for a in &addresses {
        needles.insert(a.address_line.clone());
        needles.extend(a.notes.clone());
    }
    // Short values would match unrelated text.
    let needles: Vec<String> = needles
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| n.chars().count() >= 4)
        .collect();
    let emails: Vec<String> = emails.into_iter().collect();

    // Kept for the tax law, under the pseudonym: orders (their address), payments and the
    // providers' answers about them.
    let orders = order::Entity::find()
        .filter(order::Column::UserId.eq(uid))
        .all(&txn)
        .await?;
    let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    for o in &orders {
        let mut am = o.clone().into_active_model();
        if let Some(Value::Object(a)) = &o.shipping_address {
            let mut kept = serde_json::Map::new();
            kept.insert("name".into(), Value::from(alias.as_str()));
            kept.insert("addressLine".into(), Value::from(alias.as_str()));
            // The comuna and region stay: they are not the person, and regional sales use them.
            for k in ["comuna", "region"] {
                if let Some(v) = a.get(k) {
                    kept.insert(k.into(), v.clone());
                }
            }
            am.shipping_address = Set(Some(Value::Object(kept)));
        }
        am.shipping_address_id = Set(None);
        am.update(&txn).await?;
    }
    let payment_ids: Vec<i64> = payment::Entity::find()
        .select_only()
        .column(payment::Column::Id)
        .filter(payment::Column::OrderId.is_in(order_ids.clone()))
        .into_tuple()
        .all(&txn)
        .await?;
    let scrub_in = Scrub {
        needles: &needles,
        alias: &alias,
    };
    scrub_in
        .rows(
            &txn,
            payment::Entity::find().filter(payment::Column::Id.is_in(payment_ids.clone())),
            payment::Column::Id,
            payment::Column::RawPayload,
        )
        .await?;
    scrub_in
        .rows(
            &txn,
            payment_event::Entity::find()
                .filter(payment_event::Column::PaymentId.is_in(payment_ids)),
            payment_event::Column::Id,
            payment_event::Column::Payload,
        )
        .await?;

    // The audit log and the outbox keep their rows; personal values in them become the pseudonym
    // (the actor stays the user id, whose row is now the tombstone).
    scrub_in
        .rows(
            &txn,
            system_log::Entity::find().filter(
                Condition::any()
                    .add(system_log::Column::ActorUserId.eq(uid))
                    .add(
                        Condition::all()
                            .add(system_log::Column::Entity.eq("user"))
                            .add(system_log::Column::EntityId.eq(uid)),
                    )
                    .add(mentions(system_log::Column::Meta, &emails)),
            ),
            system_log::Column::Id,
            system_log::Column::Meta,
        )
        .await?;
    scrub_in
        .rows(
            &txn,
            outbox_event::Entity::find().filter(
                Condition::any()
                    .add(outbox_event::Column::ActorUserId.eq(uid))
                    .add(
                        Condition::all()
                            .add(outbox_event::Column::AggregateType.eq("user"))
                            .add(outbox_event::Column::AggregateId.eq(uid)),
                    )
                    .add(mentions(outbox_event::Column::Payload, &emails)),
            ),
            outbox_event::Column::Id,
            outbox_event::Column::Payload,
        )
        .await?;
    // Mail to the address, sent or not: the message is gone with the account.
    job::Entity::delete_many()
        .filter(job::Column::State.ne(crate::entities::job::JobState::Running))
        .filter(mentions(job::Column::Payload, &emails))
        .exec(&txn)
        .await?;

    // Deleted.
    let cart_ids: Vec<i64> = cart::Entity::find()
        .select_only()
        .column(cart::Column::Id)
        .filter(cart::Column::UserId.eq(uid))
        .into_tuple()
        .all(&txn)
        .await?;
    cart_item::Entity::delete_many()
        .filter(cart_item::Column::CartId.is_in(cart_ids))
        .exec(&txn)
        .await?;
    // Every row of these tables that is the customer's (the profile before the addresses it
    // points to).
    delete_rows::<cart::Entity>(&txn, cart::Column::UserId, uid).await?;
    delete_rows::<user_profile::Entity>(&txn, user_profile::Column::UserId, uid).await?;
    delete_rows::<address::Entity>(&txn, address::Column::UserId, uid).await?;
    delete_rows::<session::Entity>(&txn, session::Column::UserId, uid).await?;
    delete_rows::<auth_token::Entity>(&txn, auth_token::Column::UserId, uid).await?;
    delete_rows::<account_link::Entity>(&txn, account_link::Column::UserId, uid).await?;
    delete_rows::<recovery_code::Entity>(&txn, recovery_code::Column::UserId, uid).await?;
    delete_rows::<credential_attempt::Entity>(&txn, credential_attempt::Column::UserId, uid)
        .await?;
    delete_rows::<user_two_factor::Entity>(&txn, user_two_factor::Column::UserId, uid).await?;
    delete_rows::<idempotency_key::Entity>(&txn, idempotency_key::Column::UserId, uid).await?;
    // Consents stay as the record that they were given, without where from.
    consent::Entity::update_many()
        .col_expr(consent::Column::Ip, Expr::value(Option::<String>::None))
        .col_expr(
            consent::Column::UserAgent,
            Expr::value(Option::<String>::None),
        )
        .filter(consent::Column::UserId.eq(uid))
        .exec(&txn)
        .await?;
    // Reviews keep their rating (the product's average does not move), not their words.
    product_review::Entity::update_many()
        .col_expr(
            product_review::Column::Title,
            Expr::value(Option::<String>::None),
        )
        .col_expr(product_review::Column::Body, Expr::value(""))
        .col_expr(product_review::Column::UpdatedAt, Expr::value(now))
        .filter(product_review::Column::UserId.eq(uid))
        .exec(&txn)
        .await?;
    // Medicinal documents and every private file of the customer, with their stored bytes.
    delete_rows::<medicinal_document::Entity>(&txn, medicinal_document::Column::UserId, uid)
        .await?;
    let private = file::Entity::find()
        .filter(file::Column::OwnerId.eq(uid))
        .filter(file::Column::IsPublic.eq(false))
        .all(&txn)
        .await?;
    file::Entity::delete_many()
        .filter(file::Column::Id.is_in(private.iter().map(|f| f.id)))
        .exec(&txn)
        .await?;
    let mut paths: Vec<std::path::PathBuf> = private
        .iter()
        .map(|f| files::private_dir(st).join(&f.storage_key))
        .collect();
    // Earlier exports' ZIPs.
    let exports = privacy_request::Entity::find()
        .filter(privacy_request::Column::UserId.eq(uid))
        .filter(privacy_request::Column::StorageKey.is_not_null())
        .all(&txn)
        .await?;
    paths.extend(
        exports
            .iter()
            .filter_map(|e| e.storage_key.as_ref())
            .map(|k| files::private_dir(st).join(k)),
    );
    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::StorageKey,
            Expr::value(Option::<String>::None),
        )
        .filter(privacy_request::Column::UserId.eq(uid))
        .exec(&txn)
        .await?;

    // The tombstone: the id that kept orders and audit rows point to, nothing personal.
    let mut am = u.clone().into_active_model();
    am.name = Set(user::ERASED_NAME.to_string());
    am.email = Set(alias.clone());
    am.rut = Set(None);
    am.password_hash = Set("!erased".into());
    am.is_active = Set(false);
    am.validated_medicinal = Set(false);
    am.email_verified_at = Set(None);
    am.deleted_at = Set(Some(u.deleted_at.unwrap_or(now)));
    am.erased_at = Set(Some(now));
    am.processing_blocked_reason = Set(None);
    am.updated_at = Set(now);
    am.update(&txn).await?;

    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::State,
            Expr::value(PrivacyRequestState::Ready),
        )
        .col_expr(privacy_request::Column::CompletedAt, Expr::value(now))
        .col_expr(
            privacy_request::Column::Error,
            Expr::value(Option::<String>::None),
        )
        .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
        .filter(privacy_request::Column::Id.eq(r.id))
        .exec(&txn)
        .await?;
    events::record_for(
        &txn,
        st,
        ctx,
        Some(uid),
        DomainEvent::AccountErased {
            id: uid,
            request_id: r.id,
            orders_kept: orders.len() as u64,
            files_deleted: private.len() as u64,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_in_nested_strings_only() {
        let mut v = serde_json::json!({
            "payer": {"email": "ana@example.cl", "name": "Ana Pérez"},
            "list": ["x ana@example.cl y", 3],
            "amount": 1000
        });
        let needles = vec!["ana@example.cl".to_string(), "Ana Pérez".to_string()];
        assert!(scrub(&mut v, &needles, "cliente-1"));
        assert_eq!(
            v,
            serde_json::json!({
                "payer": {"email": "cliente-1", "name": "cliente-1"},
                "list": ["x cliente-1 y", 3],
                "amount": 1000
            })
        );
        assert!(!scrub(&mut v, &needles, "cliente-1"));
    }

    #[test]
    fn pseudonyms_are_random() {
        let a = pseudonym();
        assert!(a.starts_with("cliente-") && a.len() == 20, "{a}");
        assert_ne!(a, pseudonym());
    }
}
