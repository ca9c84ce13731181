//! Domain events: the one seam for everything that must react to a change.
//!
//! A service calls [`record`] inside the transaction that makes the change. It writes, in that
//! transaction, the audit row (`system_logs`, read by `GET /api/admin/logs`) and an outbox row
//! (`outbox_events`) that the job runner later hands to subscribers. Either the change, its audit
//! row and its outbox row all commit, or none of them does.
//!
//! Each variant names its audit action and entity. The audit row's `entity_id` is the event's `id`
//! field and its `meta` is every other field (camelCase), so one action always carries the same
//! metadata wherever it is written. Metadata never holds secrets, passwords, tokens or document
//! contents; personal values (names, RUT, phone) appear as changed field names only.

use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DatabaseTransaction, EntityTrait, IdenStatic,
    IntoActiveModel, Iterable, ModelTrait, Set,
};
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::actor::RequestCtx;
use crate::clock::Clock;
use crate::entities::consent::{ConsentPurpose, ConsentSource};
use crate::entities::job::JobState;
use crate::entities::medicinal_document::{DocStatus, DocType};
use crate::entities::{outbox_event, system_log};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub mod dispatch;

pub use dispatch::{Interest, Subscriber, Subscribers};

/// Which fields an update changed: every changed field by name, and `from`/`to` for those whose
/// values are neither personal nor bulky. The metadata of every `*.updated` action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub changes: Map<String, Value>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// A changed field whose values stay out of the audit log.
    pub fn field(&mut self, name: &str) {
        self.fields.push(name.to_string());
    }

    /// A changed field with its old and new value.
    pub fn change(&mut self, name: &str, from: impl Serialize, to: impl Serialize) {
        self.field(name);
        self.changes.insert(
            name.to_string(),
            serde_json::json!({"from": from, "to": to}),
        );
    }

    /// The columns an active model sets to a value different from `current`'s, named in camelCase.
    /// `updated_at` and the columns in `skip` (derived ones) are left out; the columns in
    /// `names_only` are listed without their values.
    pub fn between<A>(
        current: &<A::Entity as EntityTrait>::Model,
        am: &A,
        names_only: &[&str],
        skip: &[&str],
    ) -> Changes
    where
        A: ActiveModelTrait,
    {
        let mut out = Changes::default();
        for col in <A::Entity as EntityTrait>::Column::iter() {
            let name = col.as_str();
            if name == "updated_at" || skip.contains(&name) {
                continue;
            }
            let ActiveValue::Set(to) = am.get(col) else {
                continue;
            };
            let from = current.get(col);
            if from == to {
                continue;
            }
            let field = crate::util::snake_to_camel(name);
            if names_only.contains(&name) {
                out.field(&field);
            } else {
                out.change(
                    &field,
                    sea_orm::sea_query::sea_value_to_json_value(&from),
                    sea_orm::sea_query::sea_value_to_json_value(&to),
                );
            }
        }
        out
    }
}

/// What a delete did: rows that history refers to (ordered products, used coupons) are
/// deactivated instead of deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Removal {
    Deleted,
    Deactivated,
}

/// Who changed a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangedBy {
    /// The user, on their own profile.
    #[serde(rename = "self")]
    Owner,
    Admin,
    /// The approval of a medicinal document.
    Review,
}

macro_rules! domain_events {
    ($(
        $(#[$doc:meta])*
        $variant:ident = ($action:literal, $entity:literal) { $($(#[$fattr:meta])* $field:ident : $ty:ty),* $(,)? }
    )*) => {
        /// Everything the domain records. Serialized as the outbox payload: `{"event": action, ...}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "event", rename_all_fields = "camelCase")]
        pub enum DomainEvent {
            $(
                $(#[$doc])*
                #[serde(rename = $action)]
                $variant { $($(#[$fattr])* $field: $ty),* },
            )*
        }

        impl DomainEvent {
            /// The audit action, e.g. `order.status_changed`.
            pub fn action(&self) -> &'static str {
                match self { $(DomainEvent::$variant { .. } => $action,)* }
            }

            /// The audit entity, e.g. `order`.
            pub fn entity(&self) -> &'static str {
                match self { $(DomainEvent::$variant { .. } => $entity,)* }
            }

            /// Every action name, for documentation and filters.
            pub const ACTIONS: &'static [&'static str] = &[$($action),*];
        }
    };
}

domain_events! {
    // Catalogue.
    ProductCreated = ("product.created", "product") { id: i64, slug: String }
    ProductUpdated = ("product.updated", "product") { id: i64, #[serde(flatten)] changes: Changes }
    ProductDeleted = ("product.deleted", "product") { id: i64, slug: String, outcome: Removal }
    /// A CSV import that wrote rows (`id` absent: it concerns many products).
    ProductsImported = ("product.imported", "product") {
        rows: u64, products_created: u64, products_matched: u64, variants_created: u64,
    }
    CategoryCreated = ("category.created", "category") { id: i64, slug: String }
    CategoryUpdated = ("category.updated", "category") { id: i64, #[serde(flatten)] changes: Changes }
    CategoryDeleted = ("category.deleted", "category") { id: i64, slug: String, outcome: Removal }
    VariantCreated = ("variant.created", "variant") { id: i64, product_id: i64, sku: String }
    VariantUpdated = ("variant.updated", "variant") {
        id: i64, product_id: i64, #[serde(flatten)] changes: Changes,
    }
    VariantDeleted = ("variant.deleted", "variant") {
        id: i64, product_id: i64, sku: String, outcome: Removal,
    }
    CouponCreated = ("coupon.created", "coupon") { id: i64, code: String }
    CouponUpdated = ("coupon.updated", "coupon") { id: i64, code: String, #[serde(flatten)] changes: Changes }
    CouponDeleted = ("coupon.deleted", "coupon") { id: i64, code: String, outcome: Removal }

    // Identity.
    UserRegistered = ("auth.register", "user") { id: i64 }
    LoginSucceeded = ("auth.login", "user") { id: i64 }
    /// `id`: the account the email belongs to, if any.
    LoginFailed = ("auth.login_failed", "user") { id: Option<i64>, email: String, reason: String }
    /// A rotated refresh token was presented again: its whole family is revoked.
    RefreshTokenReused = ("auth.refresh_reuse", "user") { id: i64, family_revoked: bool }
    LoggedOut = ("auth.logout", "user") { id: i64 }
    /// A link to verify an address was asked for (at registration, on request, or for an email
    /// change when `change`); the mail carries it.
    EmailVerificationRequested = ("user.email_verification_requested", "user") {
        id: i64, verification_id: i64, change: bool,
    }
    /// Someone asked for a password reset link. `id`: the account the address belongs to, if any;
    /// `linkId`: the link mailed (none for no account, or when the address had enough links).
    PasswordResetRequested = ("auth.password_reset_requested", "user") {
        #[serde(default, skip_serializing_if = "Option::is_none")] id: Option<i64>,
        link_id: Option<i64>,
    }
    /// A password set with a reset link; every session of the account ended.
    PasswordReset = ("auth.password_reset", "user") { id: i64, link_id: i64, sessions_revoked: u64 }
    /// A signed-in user changed their password; their other sessions ended.
    PasswordChanged = ("auth.password_changed", "user") { id: i64, other_sessions_revoked: u64 }
    /// A two-factor secret was drawn (not yet confirmed).
    TwoFactorSetUp = ("auth.two_factor_setup", "user") { id: i64 }
    /// Two-factor sign-in is on; `recovery_codes` new recovery codes were issued.
    TwoFactorEnabled = ("auth.two_factor_enabled", "user") { id: i64, recovery_codes: u64 }
    TwoFactorDisabled = ("auth.two_factor_disabled", "user") { id: i64 }
    /// A second factor was refused at sign-in (`code_invalid`, `code_already_used`,
    /// `recoveryCode_invalid`); counts towards the account's lockout.
    MfaFailed = ("auth.mfa_failed", "user") { id: i64, reason: String }
    /// A recovery code completed a sign-in; `remaining` are left unused.
    RecoveryCodeUsed = ("auth.recovery_code_used", "user") { id: i64, remaining: u64 }
    /// One session (refresh-token family) ended by its user (`self`) or an admin.
    SessionRevoked = ("auth.session_revoked", "user") { id: i64, session_id: i64, by: ChangedBy }
    /// A user's sessions ended: the others of the user's own (`self`), or all of them (`admin`).
    SessionsRevoked = ("auth.sessions_revoked", "user") { id: i64, count: u64, by: ChangedBy }
    /// A consent was given (or an implied privacy-policy acceptance made express).
    ConsentGranted = ("consent.granted", "user") {
        id: i64, consent_id: i64, purpose: ConsentPurpose, policy_version: String,
        source: ConsentSource, explicit: bool,
    }
    /// A consent was withdrawn (`consents`: the rows it ended).
    ConsentWithdrawn = ("consent.withdrawn", "user") { id: i64, purpose: ConsentPurpose, consents: u64 }
    /// A customer asked for an export of their personal data (`request_id`: the privacy request).
    DataExportRequested = ("privacy.export_requested", "user") { id: i64, request_id: i64 }
    /// The export is ready to download (for 24 hours).
    DataExportReady = ("privacy.export_ready", "user") { id: i64, request_id: i64, size_bytes: i64 }
    /// The export's ZIP was downloaded.
    DataExportDownloaded = ("privacy.export_downloaded", "user") { id: i64, request_id: i64 }
    /// A customer asked for their account to be erased: it runs at `scheduled_for` unless they
    /// cancel first; `sessions`: the sessions ended at once.
    ErasureRequested = ("privacy.erasure_requested", "user") {
        id: i64, request_id: i64, scheduled_for: chrono::DateTime<chrono::Utc>, sessions: u64,
    }
    /// The customer cancelled the erasure within the grace period.
    ErasureCancelled = ("privacy.erasure_cancelled", "user") { id: i64, request_id: i64 }
    /// An admin had a pending erasure run now rather than at the end of its grace period.
    ErasureExpedited = ("privacy.erasure_expedited", "user") { id: i64, request_id: i64 }
    /// The account was erased: its personal data deleted or replaced by a pseudonym; orders kept
    /// for the tax law (`orders_kept`) and files deleted counted.
    AccountErased = ("privacy.erasure_completed", "user") {
        id: i64, request_id: i64, orders_kept: u64, files_deleted: u64,
    }
    /// A link was used: the address is verified and, when `changed`, is now the account's email.
    EmailVerified = ("user.email_verified", "user") { id: i64, verification_id: i64, changed: bool }
    UserUpdated = ("user.updated", "user") {
        id: i64,
        by: ChangedBy,
        #[serde(flatten)] changes: Changes,
        #[serde(default, skip_serializing_if = "Option::is_none")] medicinal_document_id: Option<i64>,
    }
    /// A user deleted by an admin (soft: the row stays for history).
    UserDeactivated = ("user.deleted", "user") { id: i64 }
    /// An admin blocked the processing of a customer's data (read-only account) while a dispute
    /// is resolved, or changed why.
    ProcessingBlocked = ("user.processing_blocked", "user") { id: i64, reason: String }
    /// The block ended.
    ProcessingUnblocked = ("user.processing_unblocked", "user") { id: i64 }
    AddressCreated = ("address.created", "address") { id: i64 }
    AddressUpdated = ("address.updated", "address") { id: i64 }
    AddressDeleted = ("address.deleted", "address") { id: i64, was_default: bool }

    // Files and medicinal documents.
    FileUploaded = ("file.uploaded", "file") { id: i64, purpose: String, content_type: String, size_bytes: i64 }
    /// A private file served to someone (its owner or an admin).
    FileRead = ("file.read", "file") { id: i64, purpose: String, owner_id: i64 }
    DocumentSubmitted = ("medicinal_document.submitted", "medicinal_document") {
        id: i64, doc_type: DocType, file_id: i64,
    }
    DocumentDeleted = ("medicinal_document.deleted", "medicinal_document") {
        id: i64, status: DocStatus, file_id: i64,
    }
    /// Kept past `MEDICINAL_DOC_RETENTION_DAYS` after it expired or was rejected: deleted with
    /// its file by the periodic purge.
    DocumentPurged = ("medicinal_document.purged", "medicinal_document") {
        id: i64, user_id: i64, status: DocStatus, file_id: i64,
    }
    DocumentReviewed = ("medicinal_document.reviewed", "medicinal_document") {
        id: i64, from: DocStatus, to: DocStatus, user_id: i64,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    }

    /// A variant's stock fell from above `LOW_STOCK_THRESHOLD` to it or below (a sale or an edit).
    StockLow = ("variant.stock_low", "variant") { id: i64, product_id: i64, stock: i32, threshold: i32 }

    // Reviews.
    ReviewCreated = ("review.created", "review") { id: i64, product_id: i64, rating: i16 }
    ReviewModerated = ("review.moderated", "review") { id: i64, is_visible: FromTo<bool> }

    // Orders and payments.
    OrderCreated = ("order.created", "order") {
        id: i64, total_cents: i64, lines: usize, coupon: Option<String>, reserved_until: String,
    }
    OrderStatusChanged = ("order.status_changed", "order") { id: i64, from: String, to: String, reason: String }
    OrderTrackingUpdated = ("order.tracking_updated", "order") { id: i64 }
    /// `id`: the order being paid.
    PaymentStarted = ("payment.started", "order") { id: i64, provider: String, payment_ref: String }
    PaymentAmountMismatch = ("payment.amount_mismatch", "payment") {
        id: i64, order_id: i64, expected_cents: i64, received_cents: i64,
    }
    PaymentOutcome = ("payment.outcome", "payment") { id: i64, order_id: i64, outcome: String }
    RefundRequired = ("payment.refund_required", "payment") { id: i64, order_id: i64, reason: String }
    PaymentRefunded = ("payment.refunded", "payment") {
        id: i64, order_id: i64, amount_cents: i64, #[serde(rename = "type")] kind: String,
    }
    RefundFailed = ("payment.refund_failed", "payment") { id: i64, order_id: i64, error: String }
    /// A provider's notification, forged ones included (provider and outcome only, never the payload).
    WebhookReceived = ("webhook.received", "payment") { provider: String, outcome: String }

    // API keys (the key itself is never recorded).
    ApiKeyCreated = ("api_key.created", "api_key") {
        id: i64, public_id: String, name: String, scopes: Vec<String>,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    }
    ApiKeyRevoked = ("api_key.revoked", "api_key") { id: i64, public_id: String }

    // Outbound webhooks (never the URL's query or the secret).
    WebhookEndpointCreated = ("webhook_endpoint.created", "webhook_endpoint") {
        id: i64, event_types: Vec<String>,
    }
    WebhookEndpointUpdated = ("webhook_endpoint.updated", "webhook_endpoint") { id: i64, fields: Vec<String> }
    WebhookEndpointDeleted = ("webhook_endpoint.deleted", "webhook_endpoint") { id: i64 }
    WebhookSecretRotated = ("webhook_endpoint.secret_rotated", "webhook_endpoint") {
        id: i64, previous_valid_until: chrono::DateTime<chrono::Utc>,
    }
    /// The server disabled an endpoint: `gone` (it answered 410) or `failing` (24 h of failures).
    WebhookEndpointDisabled = ("webhook_endpoint.disabled", "webhook_endpoint") { id: i64, reason: String }
    WebhookRedelivered = ("webhook_delivery.redelivered", "webhook_delivery") { id: i64, endpoint_id: i64 }

    // Background jobs.
    /// An operator sent a dead or failed job back to the queue.
    JobRetried = ("job.retried", "job") { id: i64, kind: String, from: JobState }

    // The seed command.
    SeedUserCreated = ("seed.user_created", "user") { id: i64 }
    SeedUserUpdated = ("seed.user_updated", "user") { id: i64 }
    SeedDocumentCreated = ("seed.medicinal_document_created", "medicinal_document") { id: i64 }
}

/// A value's old and new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FromTo<T> {
    pub from: T,
    pub to: T,
}

impl DomainEvent {
    /// The user the audit row names as actor when it is not the request's signed-in user: whoever
    /// just registered or signed in, or the owner of a reused refresh token.
    fn actor(&self) -> Option<i64> {
        match self {
            DomainEvent::UserRegistered { id }
            | DomainEvent::LoginSucceeded { id }
            | DomainEvent::EmailVerificationRequested { id, .. }
            | DomainEvent::EmailVerified { id, .. }
            | DomainEvent::PasswordReset { id, .. }
            | DomainEvent::MfaFailed { id, .. }
            | DomainEvent::RecoveryCodeUsed { id, .. }
            | DomainEvent::ConsentGranted { id, .. }
            | DomainEvent::ErasureCancelled { id, .. }
            | DomainEvent::RefreshTokenReused { id, .. } => Some(*id),
            DomainEvent::PasswordResetRequested { id, .. } => *id,
            _ => None,
        }
    }

    /// The outbox payload: the event's fields (camelCase), its type as `event` and the payload
    /// shape's `version`.
    pub fn payload(&self) -> AppResult<Value> {
        let mut v = serde_json::to_value(self)
            .map_err(|e| AppError::internal(format!("event serialization: {e}")))?;
        if let Value::Object(o) = &mut v {
            o.insert("version".into(), PAYLOAD_VERSION.into());
        }
        Ok(v)
    }

    /// The aggregate the event belongs to, which orders its delivery: the order for everything
    /// that happens to an order or its payments, else the audit entity and its id.
    pub fn aggregate(&self, entity_id: Option<i64>) -> (&'static str, Option<i64>) {
        match self {
            DomainEvent::PaymentAmountMismatch { order_id, .. }
            | DomainEvent::PaymentOutcome { order_id, .. }
            | DomainEvent::RefundRequired { order_id, .. }
            | DomainEvent::PaymentRefunded { order_id, .. }
            | DomainEvent::RefundFailed { order_id, .. } => ("order", Some(*order_id)),
            other => (other.entity(), entity_id),
        }
    }

    /// The audit row's `entity_id` and `meta`.
    fn audit_parts(&self) -> AppResult<(Option<i64>, Value)> {
        let Value::Object(mut meta) = serde_json::to_value(self)
            .map_err(|e| AppError::internal(format!("event serialization: {e}")))?
        else {
            return Err(AppError::internal("an event is not a JSON object"));
        };
        meta.remove("event");
        let id = meta.remove("id").and_then(|v| v.as_i64());
        Ok((id, Value::Object(meta)))
    }
}

/// The version of the outbox payload's shape (`payload.version`). A change that removes or
/// retypes a field bumps it; adding a field does not.
pub const PAYLOAD_VERSION: i64 = 1;

/// Records `event` inside the caller's transaction: its audit row and its outbox row.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    event: DomainEvent,
) -> AppResult<()> {
    record_for(conn, st, ctx, None, event).await
}

/// What a reaction's run returns.
pub type ReactionFuture<'a> = Pin<Box<dyn Future<Output = AppResult<()>> + Send + 'a>>;

/// A reaction that must commit with the change that caused it, in the caller's transaction (the
/// outbox's subscribers react after the commit). Events a reaction wants are recorded with
/// [`record_in`]; [`record`] refuses them.
#[derive(Clone, Copy)]
pub struct Reaction {
    pub name: &'static str,
    pub wants: fn(&DomainEvent) -> bool,
    pub run: for<'a> fn(
        &'a DatabaseTransaction,
        &'a AppState,
        &'a RequestCtx,
        &'a DomainEvent,
    ) -> ReactionFuture<'a>,
}

/// The in-transaction reactions of this build (`services::composition::reactions`).
#[derive(Clone, Default)]
pub struct Reactions(Vec<Reaction>);

impl Reactions {
    pub fn new() -> Self {
        Reactions::default()
    }

    pub fn with(mut self, reaction: Reaction) -> Self {
        self.0.push(reaction);
        self
    }
}

/// [`record`] for work done on a user's behalf outside their request (a job an admin's action
/// asked for): `on_behalf_of` is the audit row's actor when the event names none.
pub async fn record_for<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    on_behalf_of: Option<i64>,
    event: DomainEvent,
) -> AppResult<()> {
    if let Some(r) = reactions_to(st, &event).next() {
        return Err(AppError::internal(format!(
            "{} has the in-transaction reaction {}: record it with events::record_in",
            event.action(),
            r.name
        )));
    }
    write(conn, st, ctx, on_behalf_of, &event).await
}

/// [`record`] in a write transaction, with the reactions that must commit with the change (the
/// composition root installs them: `services::composition::reactions`). A reaction writes rows
/// but records no event of its own.
pub async fn record_in(
    txn: &DatabaseTransaction,
    st: &AppState,
    ctx: &RequestCtx,
    event: DomainEvent,
) -> AppResult<()> {
    write(txn, st, ctx, None, &event).await?;
    let reactions: Vec<Reaction> = reactions_to(st, &event).copied().collect();
    for r in reactions {
        (r.run)(txn, st, ctx, &event).await?;
    }
    Ok(())
}

/// The installed reactions that want `event`.
fn reactions_to<'a>(
    st: &'a AppState,
    event: &'a DomainEvent,
) -> impl Iterator<Item = &'a Reaction> + 'a {
    st.reactions::<Reactions>()
        .map(|r| r.0.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(move |r| (r.wants)(event))
}

/// The audit row and the outbox row of `event`.
async fn write<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    on_behalf_of: Option<i64>,
    event: &DomainEvent,
) -> AppResult<()> {
    let (entity_id, meta) = event.audit_parts()?;
    let now = st.clock.now();
    let actor = event.actor().or(on_behalf_of).or(ctx.user_id());
    let log = system_log::ActiveModel {
        actor_user_id: Set(actor),
        actor_api_key_id: Set(ctx.api_key().map(|k| k.id)),
        action: Set(event.action().to_string()),
        entity: Set(event.entity().to_string()),
        entity_id: Set(entity_id),
        meta: Set(meta),
        trace_id: Set(Some(ctx.trace_id.clone())),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    let (aggregate_type, aggregate_id) = event.aggregate(entity_id);
    outbox_event::ActiveModel {
        event_type: Set(event.action().to_string()),
        payload: Set(event.payload()?),
        aggregate_type: Set(aggregate_type.to_string()),
        aggregate_id: Set(aggregate_id),
        audit_log_id: Set(Some(log.id)),
        actor_user_id: Set(actor),
        trace_id: Set(Some(ctx.trace_id.clone())),
        occurred_at: Set(now),
        dispatched_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    st.metrics
        .outbox_events
        .with_label_values(&[event.action()])
        .inc();
    Ok(())
}

/// Writes an update and records it: when `am` changes nothing the row is left as it is and no
/// event is recorded; otherwise `updated_at` is set, the row written, and `event(changes)` recorded.
/// `names_only` are columns named without their values; `skip` are derived columns left out.
#[allow(clippy::too_many_arguments)]
pub async fn update_recorded<A, C>(
    conn: &C,
    st: &AppState,
    ctx: &RequestCtx,
    current: <A::Entity as EntityTrait>::Model,
    mut am: A,
    names_only: &[&str],
    skip: &[&str],
    event: impl FnOnce(Changes, &<A::Entity as EntityTrait>::Model) -> DomainEvent,
) -> AppResult<<A::Entity as EntityTrait>::Model>
where
    A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let changes = Changes::between(&current, &am, names_only, skip);
    if changes.is_empty() {
        return Ok(current);
    }
    if let Some(col) =
        <A::Entity as EntityTrait>::Column::iter().find(|c| c.as_str() == "updated_at")
    {
        am.set(col, st.clock.now().into());
    }
    let updated = am.update(conn).await?;
    let e = event(changes, &updated);
    record(conn, st, ctx, e).await?;
    Ok(updated)
}

/// Removes a row, or deactivates it (`is_active = false`) when history refers to it.
pub async fn delete_or_deactivate<M, C>(
    conn: &C,
    clock: &Clock,
    current: M,
    referenced: bool,
) -> AppResult<Removal>
where
    M: ModelTrait + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + Send,
    <M::Entity as EntityTrait>::ActiveModel: sea_orm::ActiveModelBehavior + Send,
    <M::Entity as EntityTrait>::Model: IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>,
    C: ConnectionTrait,
{
    if !referenced {
        current.delete(conn).await?;
        return Ok(Removal::Deleted);
    }
    let mut am = current.into_active_model();
    for col in <M::Entity as EntityTrait>::Column::iter() {
        match col.as_str() {
            "is_active" => am.set(col, false.into()),
            "updated_at" => am.set(col, clock.now().into()),
            _ => {}
        }
    }
    am.update(conn).await?;
    Ok(Removal::Deactivated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_meta_is_the_event_without_its_tag_and_id() {
        let e = DomainEvent::OrderStatusChanged {
            id: 7,
            from: "pending".into(),
            to: "paid".into(),
            reason: "payment".into(),
        };
        let (id, meta) = e.audit_parts().unwrap();
        assert_eq!(id, Some(7));
        assert_eq!(
            meta,
            serde_json::json!({"from": "pending", "to": "paid", "reason": "payment"})
        );
        let payload = serde_json::to_value(&e).unwrap();
        assert_eq!(payload["event"], "order.status_changed");
        assert_eq!(serde_json::from_value::<DomainEvent>(payload).unwrap(), e);
    }

    #[test]
    fn updates_list_every_changed_field_and_values_only_where_allowed() {
        let mut c = Changes::default();
        c.change("priceCents", 100, 200);
        c.field("name");
        let e = DomainEvent::UserUpdated {
            id: 1,
            by: ChangedBy::Owner,
            changes: c,
            medicinal_document_id: None,
        };
        let (_, meta) = e.audit_parts().unwrap();
        assert_eq!(
            meta,
            serde_json::json!({"by": "self", "fields": ["priceCents", "name"],
                "changes": {"priceCents": {"from": 100, "to": 200}}})
        );
        let back: DomainEvent = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn action_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in DomainEvent::ACTIONS {
            assert!(seen.insert(a), "{a} twice");
        }
        assert_eq!(crate::util::snake_to_camel("price_cents"), "priceCents");
    }
}
