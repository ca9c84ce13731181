//! The portable export of a customer's personal data (Ley 21.719: access and portability).
//!
//! `POST /api/me/data-export` records a `privacy_requests` row (kind `export`) and a
//! `privacy.export` job in one transaction; the job gathers everything the store holds about the
//! customer into `data.json` (shape: `docs/data-export.schema.json`), adds their own uploaded
//! files and a `README.txt` (Spanish) in a ZIP under the private upload directory, and marks the
//! request ready. The ZIP is served by `GET /api/me/data-exports/{id}/download` to its owner only,
//! through a link signed for 24 hours.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::entities::{
    address, cart, cart_item, consent, coupon, file, job, medicinal_document, order, order_item,
    payment, product_review, product_variant, session, system_log, user, user_profile,
};
use crate::error::{AppError, AppResult};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::files;
use crate::services::platform::jobs::{self, Job, JobError, NewJob};
use crate::services::platform::pagination::Page;
use crate::services::privacy::requests;
use crate::state::AppState;

/// How long a ready export may be downloaded.
pub const DOWNLOAD_TTL_HOURS: i64 = 24;
/// Exports a customer may ask for in 24 hours.
pub const EXPORTS_PER_DAY: u64 = 3;
/// The version of `data.json`'s shape (`formatVersion`).
pub const FORMAT_VERSION: u32 = 1;

/// A request as its owner sees it, with the download link while it is valid.
#[derive(Debug, Clone)]
pub struct ExportView {
    pub request: privacy_request::Model,
    pub download_url: Option<String>,
}

/// Asks for an export: 202 with the request; one open export per customer (409
/// `export_in_progress`), [`EXPORTS_PER_DAY`] a day (429).
pub async fn request(st: &AppState, ctx: &RequestCtx) -> AppResult<privacy_request::Model> {
    let me = ctx.require_user()?.id;
    let now = st.clock.now();
    let txn = begin_write(&st.db).await?;
    settle_failed(&txn, st, Some(me)).await?;
    let open = privacy_request::Entity::find()
        .filter(privacy_request::Column::UserId.eq(me))
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Export))
        .filter(privacy_request::Column::State.is_in([
            PrivacyRequestState::Pending,
            PrivacyRequestState::Processing,
        ]))
        .one(&txn)
        .await?;
    if let Some(open) = open {
        return Err(in_progress(open.id));
    }
    let recent = privacy_request::Entity::find()
        .filter(privacy_request::Column::UserId.eq(me))
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Export))
        .filter(privacy_request::Column::RequestedAt.gt(now - Duration::hours(24)))
        .order_by_asc(privacy_request::Column::RequestedAt)
        .all(&txn)
        .await?;
    if recent.len() as u64 >= EXPORTS_PER_DAY {
        let free_at = recent[0].requested_at + Duration::hours(24);
        return Err(AppError::rate_limited(
            Ord::max((free_at - now).num_seconds(), 1) as u64,
        ));
    }
    let inserted = privacy_request::ActiveModel {
        user_id: Set(me),
        kind: Set(PrivacyRequestKind::Export),
        state: Set(PrivacyRequestState::Pending),
        requested_at: Set(now),
        due_at: Set(now + Duration::days(st.config.privacy_request_due_days)),
        completed_at: Set(None),
        expires_at: Set(None),
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
        // Asked twice at once: the other request is the open one.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => in_progress(0),
        _ => AppError::from(e),
    })?;
    jobs::enqueue(
        &txn,
        now,
        NewJob::of::<PrepareExport>(&ExportPayload {
            request_id: inserted.id,
            trace_id: ctx.trace_id.clone(),
        })?
        .unique(job_key(inserted.id)),
    )
    .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::DataExportRequested {
            id: me,
            request_id: inserted.id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(inserted)
}

fn in_progress(id: i64) -> AppError {
    let which = if id > 0 {
        format!(" (request {id})")
    } else {
        String::new()
    };
    AppError::conflict_field(
        "dataExport",
        "export_in_progress",
        format!("An export of your data is already being prepared{which}"),
    )
}

fn job_key(request_id: i64) -> String {
    format!("{}:{request_id}", PrepareExport::KIND)
}

/// The unique key of the job that answers request `r`.
fn job_key_of(r: &privacy_request::Model) -> String {
    match r.kind {
        PrivacyRequestKind::Export => job_key(r.id),
        PrivacyRequestKind::Erasure => crate::services::privacy::erasure::job_key(r.id),
    }
}

/// Marks the open requests (of `user`, or everyone's) whose job gave up (dead) as failed, so the
/// customer may ask again (an erasure: cancel it, or an admin may run it again).
pub(crate) async fn settle_failed<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    user_id: Option<i64>,
) -> AppResult<()> {
    let mut open = privacy_request::Entity::find();
    if let Some(u) = user_id {
        open = open.filter(privacy_request::Column::UserId.eq(u));
    }
    let open = open
        .filter(privacy_request::Column::State.is_in([
            PrivacyRequestState::Pending,
            PrivacyRequestState::Processing,
        ]))
        .all(conn)
        .await?;
    if open.is_empty() {
        return Ok(());
    }
    // One lookup for all of them: the dead jobs among theirs.
    let keys: std::collections::HashMap<String, i64> =
        open.iter().map(|r| (job_key_of(r), r.id)).collect();
    let dead = job::Entity::find()
        .filter(job::Column::UniqueKey.is_in(keys.keys().cloned()))
        .filter(job::Column::State.eq(crate::entities::job::JobState::Dead))
        .all(conn)
        .await?;
    for j in dead {
        let Some(id) = j.unique_key.as_ref().and_then(|k| keys.get(k)) else {
            continue;
        };
        privacy_request::Entity::update_many()
            .col_expr(
                privacy_request::Column::State,
                Expr::value(PrivacyRequestState::Failed),
            )
            .col_expr(
                privacy_request::Column::Error,
                Expr::value(
                    j.last_error
                        .map(|e| e.chars().take(500).collect::<String>()),
                ),
            )
            .col_expr(
                privacy_request::Column::UpdatedAt,
                Expr::value(st.clock.now()),
            )
            .filter(privacy_request::Column::Id.eq(*id))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// One of the caller's exports, with its download link while it is valid (404 when not theirs).
pub async fn status(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<ExportView> {
    let me = ctx.require_user()?.id;
    settle_failed(&st.db, st, Some(me)).await?;
    let request = privacy_request::Entity::find_by_id(id)
        .filter(privacy_request::Column::UserId.eq(me))
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Export))
        .one(&st.db)
        .await?
        .ok_or_else(|| AppError::not_found("Data export"))?;
    let download_url = match (request.state, request.expires_at) {
        (PrivacyRequestState::Ready, Some(exp)) if exp > st.clock.now() => {
            Some(signed_url(st, &request, exp))
        }
        _ => None,
    };
    Ok(ExportView {
        request,
        download_url,
    })
}

/// What a download link gives access to: this request's export, for its owner.
fn url_subject(r: &privacy_request::Model) -> String {
    format!("data-export:{}:{}", r.id, r.user_id)
}

fn signed_url(st: &AppState, r: &privacy_request::Model, expires: DateTime<Utc>) -> String {
    let path = format!("/api/me/data-exports/{}/download", r.id);
    st.url_signer.url(&path, &url_subject(r), expires)
}

/// The ZIP of a ready export, for its owner with a valid, unexpired link: the path on disk and
/// the request. Anyone else, a bad signature or an expired link: 404 (401 without a token).
pub async fn downloadable(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    signed: files::Signature,
) -> AppResult<(privacy_request::Model, std::path::PathBuf)> {
    let me = ctx.require_user()?.id;
    let missing = || AppError::not_found("Data export");
    let r = privacy_request::Entity::find_by_id(id)
        .filter(privacy_request::Column::UserId.eq(me))
        .filter(privacy_request::Column::Kind.eq(PrivacyRequestKind::Export))
        .filter(privacy_request::Column::State.eq(PrivacyRequestState::Ready))
        .one(&st.db)
        .await?
        .ok_or_else(missing)?;
    let now = st.clock.now();
    let signed_ok = st
        .url_signer
        .valid(&url_subject(&r), signed.expires, &signed.signature, now);
    let live = r.expires_at.is_some_and(|e| e > now);
    let key = r.storage_key.clone().ok_or_else(missing)?;
    if !signed_ok || !live {
        return Err(missing());
    }
    let txn = begin_write(&st.db).await?;
    privacy_request::Entity::update_many()
        .col_expr(
            privacy_request::Column::Downloads,
            Expr::col(privacy_request::Column::Downloads).add(1),
        )
        .filter(privacy_request::Column::Id.eq(r.id))
        .exec(&txn)
        .await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::DataExportDownloaded {
            id: me,
            request_id: r.id,
        },
    )
    .await?;
    txn.commit().await?;
    Ok((r, files::private_dir(st).join(key)))
}

/// Filters of the admins' list of personal-data requests.
#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    pub kind: Option<PrivacyRequestKind>,
    pub state: Option<PrivacyRequestState>,
    /// Only requests not answered (not ready) past their due date.
    pub overdue: Option<bool>,
}

/// A request in the admins' list, with its customer's email.
#[derive(Debug, Clone)]
pub struct AdminRequest {
    pub request: privacy_request::Model,
    pub email: Option<String>,
    pub overdue: bool,
}

/// Admin: personal-data requests, the oldest due first (what must be answered next on top).
pub async fn list_admin(
    st: &AppState,
    ctx: &RequestCtx,
    f: RequestFilter,
    page: Page,
) -> AppResult<(Vec<AdminRequest>, u64)> {
    ctx.require_admin()?;
    settle_failed(&st.db, st, None).await?;
    let now = st.clock.now();
    let mut q = privacy_request::Entity::find();
    if let Some(k) = f.kind {
        q = q.filter(privacy_request::Column::Kind.eq(k));
    }
    if let Some(s) = f.state {
        q = q.filter(privacy_request::Column::State.eq(s));
    }
    let unanswered = Condition::all()
        .add(privacy_request::Column::State.ne(PrivacyRequestState::Ready))
        .add(privacy_request::Column::DueAt.lt(now));
    match f.overdue {
        Some(true) => q = q.filter(unanswered),
        Some(false) => q = q.filter(unanswered.not()),
        None => {}
    }
    let q = q
        .order_by_asc(privacy_request::Column::DueAt)
        .order_by_asc(privacy_request::Column::Id);
    let (rows, total) = page.fetch(&st.db, q).await?;
    let emails: std::collections::HashMap<i64, String> = user::Entity::find()
        .filter(user::Column::Id.is_in(rows.iter().map(|r| r.user_id)))
        .all(&st.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    Ok((
        rows.into_iter()
            .map(|r| AdminRequest {
                email: emails.get(&r.user_id).cloned(),
                overdue: r.state != PrivacyRequestState::Ready && r.due_at < now,
                request: r,
            })
            .collect(),
        total,
    ))
}

/// One request as the admins' list shows it.
pub async fn admin_view(st: &AppState, r: privacy_request::Model) -> AppResult<AdminRequest> {
    let email = user::Entity::find_by_id(r.user_id)
        .one(&st.db)
        .await?
        .map(|u| u.email);
    Ok(AdminRequest {
        email,
        overdue: r.state != PrivacyRequestState::Ready && r.due_at < st.clock.now(),
        request: r,
    })
}

/// Deletes the ZIPs of exports whose download window has passed (the request rows stay, without
/// their `storage_key`); how many.
pub async fn purge_expired(st: &AppState) -> AppResult<u64> {
    let now = st.clock.now();
    let expired = privacy_request::Entity::find()
        .filter(privacy_request::Column::StorageKey.is_not_null())
        .filter(privacy_request::Column::ExpiresAt.lt(now))
        .all(&st.db)
        .await?;
    let mut purged = 0;
    for r in expired {
        // Conditional on the key: a second instance purging at once deletes nothing twice.
        let cleared = privacy_request::Entity::update_many()
            .col_expr(
                privacy_request::Column::StorageKey,
                Expr::value(Option::<String>::None),
            )
            .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
            .filter(privacy_request::Column::Id.eq(r.id))
            .filter(privacy_request::Column::StorageKey.eq(r.storage_key.clone()))
            .exec(&st.db)
            .await?;
        if cleared.rows_affected == 1 {
            if let Some(key) = &r.storage_key {
                files::discard(&files::private_dir(st).join(key)).await;
            }
            purged += 1;
        }
    }
    Ok(purged)
}

/// The job that prepares an export.
pub struct PrepareExport;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportPayload {
    pub request_id: i64,
    /// The request's trace id, for the audit rows the job writes.
    pub trace_id: String,
}

impl Job for PrepareExport {
    const KIND: &'static str = "privacy.export";
    type Context = AppState;
    type Payload = ExportPayload;

    async fn run(&self, st: &AppState, p: ExportPayload) -> Result<(), JobError> {
        let Some(r) =
            requests::open_for_work(&st.db, p.request_id, PrivacyRequestKind::Export).await?
        else {
            return Ok(());
        };
        let now = st.clock.now();
        if !requests::claim_for_processing(&st.db, r.id, now).await? {
            return Ok(());
        }
        let data = gather(&st.db, r.user_id, now).await?;
        let attachments = data.files.clone();
        let dir = files::private_dir(st).join("exports");
        let key = format!("exports/data-export-{}.zip", r.id);
        let path = files::private_dir(st).join(&key);
        let src_dir = files::private_dir(st);
        let public_dir = files::public_dir(st);
        let size = tokio::task::spawn_blocking(move || -> Result<u64, String> {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            write_zip(&path, &data, &attachments, &src_dir, &public_dir)
        })
        .await
        .map_err(|e| JobError::Retry(format!("export task: {e}")))?
        .map_err(|e| JobError::Retry(format!("writing the export: {e}")))?;
        let ctx = RequestCtx::anonymous(p.trace_id, std::net::Ipv4Addr::LOCALHOST.into());
        let done = st.clock.now();
        let txn = begin_write(&st.db).await?;
        let updated = privacy_request::Entity::update_many()
            .col_expr(
                privacy_request::Column::State,
                Expr::value(PrivacyRequestState::Ready),
            )
            .col_expr(privacy_request::Column::StorageKey, Expr::value(key))
            .col_expr(privacy_request::Column::SizeBytes, Expr::value(size as i64))
            .col_expr(privacy_request::Column::CompletedAt, Expr::value(done))
            .col_expr(
                privacy_request::Column::ExpiresAt,
                Expr::value(done + Duration::hours(DOWNLOAD_TTL_HOURS)),
            )
            .col_expr(privacy_request::Column::UpdatedAt, Expr::value(done))
            .filter(privacy_request::Column::Id.eq(r.id))
            .filter(privacy_request::Column::State.eq(PrivacyRequestState::Processing))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 1 {
            events::record_for(
                &txn,
                st,
                &ctx,
                Some(r.user_id),
                DomainEvent::DataExportReady {
                    id: r.user_id,
                    request_id: r.id,
                    size_bytes: size as i64,
                },
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

fn write_zip(
    path: &std::path::Path,
    data: &DataExport,
    attachments: &[ExportFile],
    private_dir: &std::path::Path,
    public_dir: &std::path::Path,
) -> Result<u64, String> {
    use zip::write::SimpleFileOptions;
    let tmp = path.with_extension("zip.part");
    let out = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipWriter::new(out);
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let err = |e: zip::result::ZipError| e.to_string();
    zip.start_file("data.json", opts).map_err(err)?;
    let json = serde_json::to_vec_pretty(data).map_err(|e| e.to_string())?;
    zip.write_all(&json).map_err(|e| e.to_string())?;
    zip.start_file("README.txt", opts).map_err(err)?;
    zip.write_all(README_ES.as_bytes())
        .map_err(|e| e.to_string())?;
    for f in attachments {
        let dir = if f.is_public { public_dir } else { private_dir };
        // A file missing on disk is listed in data.json but cannot be included.
        let Ok(bytes) = std::fs::read(dir.join(&f.storage_key)) else {
            continue;
        };
        zip.start_file(&f.path, opts).map_err(err)?;
        zip.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    zip.finish().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    Ok(std::fs::metadata(path).map_err(|e| e.to_string())?.len())
}

/// `data.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataExport {
    pub format_version: u32,
    pub generated_at: DateTime<Utc>,
    pub profile: Profile,
    pub consents: Vec<Consent>,
    pub addresses: Vec<Address>,
    pub carts: Vec<Cart>,
    pub orders: Vec<Order>,
    pub payments: Vec<Payment>,
    pub coupons_used: Vec<CouponUse>,
    pub reviews: Vec<Review>,
    pub medicinal_documents: Vec<MedicinalDocument>,
    pub sessions: Vec<Session>,
    pub audit_entries: Vec<AuditEntry>,
    pub files: Vec<ExportFile>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub rut: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub validated_medicinal: bool,
    pub phone: Option<String>,
    pub birthdate: Option<chrono::NaiveDate>,
    pub address: Option<String>,
    pub comuna: Option<String>,
    pub region: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub id: i64,
    pub purpose: String,
    pub policy_version: String,
    pub source: String,
    pub explicit: bool,
    pub granted_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub id: i64,
    pub name: String,
    pub address_line: String,
    pub comuna: String,
    pub region: String,
    pub notes: Option<String>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub id: i64,
    pub items: Vec<CartItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CartItem {
    pub variant_id: i64,
    pub sku: Option<String>,
    pub quantity: i32,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: i64,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_price_cents: i64,
    pub total_cents: i64,
    pub coupon_code: Option<String>,
    pub payment_provider: Option<String>,
    pub shipping_method: String,
    pub shipping_address: Option<serde_json::Value>,
    pub courier: Option<String>,
    pub tracking_number: Option<String>,
    pub estimated_delivery_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: i64,
    pub variant_id: i64,
    pub product_name: String,
    pub option_label: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// A payment, without what only the provider and the store need (tokens, raw answers).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub provider: String,
    pub status: String,
    pub amount_cents: i64,
    pub auth_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponUse {
    pub order_id: i64,
    pub code: String,
    pub discount_cents: i64,
    pub used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: i64,
    pub product_id: i64,
    pub rating: i16,
    pub title: Option<String>,
    pub body: String,
    pub is_visible: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicinalDocument {
    pub id: i64,
    pub doc_type: String,
    pub status: String,
    pub file_id: i64,
    pub notes: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub meta: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A file the customer uploaded, and where it is in the ZIP.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportFile {
    pub id: i64,
    pub purpose: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// The file's path inside the ZIP.
    pub path: String,
    #[serde(skip)]
    pub storage_key: String,
    #[serde(skip)]
    pub is_public: bool,
}

/// Everything the store holds about `user_id`.
pub async fn gather<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<DataExport> {
    let u = user::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let p = user_profile::Entity::find()
        .filter(user_profile::Column::UserId.eq(user_id))
        .one(conn)
        .await?;
    let profile = Profile {
        id: u.id,
        name: u.name,
        email: u.email,
        email_verified_at: u.email_verified_at,
        rut: u.rut,
        role: u.role.as_str().to_string(),
        is_active: u.is_active,
        validated_medicinal: u.validated_medicinal,
        phone: p.as_ref().and_then(|p| p.phone.clone()),
        birthdate: p.as_ref().and_then(|p| p.birthdate),
        address: p.as_ref().and_then(|p| p.address.clone()),
        comuna: p.as_ref().and_then(|p| p.comuna.clone()),
        region: p.as_ref().and_then(|p| p.region.clone()),
        created_at: u.created_at,
        updated_at: u.updated_at,
    };
    let consents = consent::Entity::find()
        .filter(consent::Column::UserId.eq(user_id))
        .order_by_asc(consent::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| Consent {
            id: c.id,
            purpose: c.purpose.as_str().to_string(),
            policy_version: c.policy_version,
            source: serde_plain(&c.source),
            explicit: c.explicit,
            granted_at: c.granted_at,
            withdrawn_at: c.withdrawn_at,
            ip: c.ip,
            user_agent: c.user_agent,
        })
        .collect();
    let addresses = address::Entity::find()
        .filter(address::Column::UserId.eq(user_id))
        .order_by_asc(address::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|a| Address {
            id: a.id,
            name: a.name,
            address_line: a.address_line,
            comuna: a.comuna,
            region: a.region,
            notes: a.notes,
            is_default: a.is_default,
            created_at: a.created_at,
            updated_at: a.updated_at,
        })
        .collect();
    let mut carts = Vec::new();
    for c in cart::Entity::find()
        .filter(cart::Column::UserId.eq(user_id))
        .order_by_asc(cart::Column::Id)
        .all(conn)
        .await?
    {
        let lines = cart_item::Entity::find()
            .filter(cart_item::Column::CartId.eq(c.id))
            .order_by_asc(cart_item::Column::Id)
            .all(conn)
            .await?;
        let skus: std::collections::HashMap<i64, String> = product_variant::Entity::find()
            .filter(product_variant::Column::Id.is_in(lines.iter().map(|i| i.variant_id)))
            .all(conn)
            .await?
            .into_iter()
            .map(|v| (v.id, v.sku))
            .collect();
        let rows: Vec<_> = lines
            .into_iter()
            .map(|i| {
                let sku = skus.get(&i.variant_id).cloned();
                (i, sku)
            })
            .collect();
        carts.push(Cart {
            id: c.id,
            items: rows
                .into_iter()
                .map(|(i, v)| CartItem {
                    variant_id: i.variant_id,
                    sku: v,
                    quantity: i.quantity,
                    added_at: i.created_at,
                })
                .collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        });
    }
    let order_rows = order::Entity::find()
        .filter(order::Column::UserId.eq(user_id))
        .order_by_asc(order::Column::Id)
        .all(conn)
        .await?;
    let order_ids: Vec<i64> = order_rows.iter().map(|o| o.id).collect();
    let items = order_item::Entity::find()
        .filter(order_item::Column::OrderId.is_in(order_ids.clone()))
        .order_by_asc(order_item::Column::Id)
        .all(conn)
        .await?;
    let coupon_ids: Vec<i64> = order_rows.iter().filter_map(|o| o.coupon_id).collect();
    let coupons: std::collections::HashMap<i64, String> = coupon::Entity::find()
        .filter(coupon::Column::Id.is_in(coupon_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|c| (c.id, c.code))
        .collect();
    let mut coupons_used = Vec::new();
    let orders = order_rows
        .into_iter()
        .map(|o| {
            let code = o.coupon_id.and_then(|id| coupons.get(&id).cloned());
            if let Some(code) = &code {
                coupons_used.push(CouponUse {
                    order_id: o.id,
                    code: code.clone(),
                    discount_cents: o.discount_cents,
                    used_at: o.created_at,
                });
            }
            Order {
                id: o.id,
                status: serde_plain(&o.status),
                items: items
                    .iter()
                    .filter(|i| i.order_id == o.id)
                    .map(|i| OrderItem {
                        product_id: i.product_id,
                        variant_id: i.variant_id,
                        product_name: i.product_name.clone(),
                        option_label: i.option_label.clone(),
                        quantity: i.quantity,
                        unit_price_cents: i.unit_price_cents,
                        line_total_cents: i.line_total_cents,
                    })
                    .collect(),
                subtotal_cents: o.subtotal_cents,
                discount_cents: o.discount_cents,
                shipping_price_cents: o.shipping_price_cents,
                total_cents: o.total_cents,
                coupon_code: code,
                payment_provider: o.payment_provider,
                shipping_method: serde_plain(&o.shipping_method),
                shipping_address: o.shipping_address,
                courier: o.courier,
                tracking_number: o.tracking_number,
                estimated_delivery_at: o.estimated_delivery_at,
                created_at: o.created_at,
                updated_at: o.updated_at,
            }
        })
        .collect();
    let payments = payment::Entity::find()
        .filter(payment::Column::OrderId.is_in(order_ids))
        .order_by_asc(payment::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|p| Payment {
            id: p.id,
            order_id: p.order_id,
            provider: p.provider.as_str().to_string(),
            status: p.status.as_str().to_string(),
            amount_cents: p.amount_cents,
            auth_code: p.auth_code,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
        .collect();
    let reviews = product_review::Entity::find()
        .filter(product_review::Column::UserId.eq(user_id))
        .order_by_asc(product_review::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| Review {
            id: r.id,
            product_id: r.product_id,
            rating: r.rating,
            title: r.title,
            body: r.body,
            is_visible: r.is_visible,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    let medicinal_documents = medicinal_document::Entity::find()
        .filter(medicinal_document::Column::UserId.eq(user_id))
        .order_by_asc(medicinal_document::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|d| MedicinalDocument {
            id: d.id,
            doc_type: serde_plain(&d.doc_type),
            status: d.status.as_str().to_string(),
            file_id: d.file_id,
            notes: d.notes,
            reviewed_at: d.reviewed_at,
            expires_at: d.expires_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
        .collect();
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .order_by_asc(session::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|s| Session {
            id: s.id,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
        })
        .collect();
    // The entries about the account, and what the customer did to anything else.
    let audit_entries = system_log::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(system_log::Column::Entity.eq("user"))
                        .add(system_log::Column::EntityId.eq(user_id)),
                )
                .add(
                    Condition::all()
                        .add(system_log::Column::ActorUserId.eq(user_id))
                        .add(system_log::Column::Entity.ne("user")),
                ),
        )
        .order_by_asc(system_log::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|l| AuditEntry {
            id: l.id,
            action: l.action,
            entity: l.entity,
            entity_id: l.entity_id,
            meta: l.meta,
            created_at: l.created_at,
        })
        .collect();
    let files = file::Entity::find()
        .filter(file::Column::OwnerId.eq(user_id))
        .order_by_asc(file::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|f| {
            let ext = std::path::Path::new(&f.storage_key)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("bin")
                .to_string();
            ExportFile {
                id: f.id,
                path: format!("files/{}-{}.{ext}", f.id, f.purpose),
                purpose: f.purpose,
                content_type: f.content_type,
                size_bytes: f.size_bytes,
                sha256: f.sha256,
                created_at: f.created_at,
                storage_key: f.storage_key,
                is_public: f.is_public,
            }
        })
        .collect();
    Ok(DataExport {
        format_version: FORMAT_VERSION,
        generated_at: now,
        profile,
        consents,
        addresses,
        carts,
        orders,
        payments,
        coupons_used,
        reviews,
        medicinal_documents,
        sessions,
        audit_entries,
        files,
    })
}

/// An enum's wire name (its serde string).
fn serde_plain<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `README.txt` in every export (Spanish, for the customer).
pub const README_ES: &str = include_str!("../../../docs/data-export-README.txt");
