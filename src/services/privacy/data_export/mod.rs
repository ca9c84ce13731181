//! The portable export of a customer's personal data (Ley 21.719: access and portability).
//!
//! `POST /api/me/data-export` records a `privacy_requests` row (kind `export`) and a
//! `privacy.export` job in one transaction; the job gathers everything the store holds about the
//! customer into `data.json` (shape: `docs/data-export.schema.json`), adds their own uploaded
//! files and a `README.txt` (Spanish) in a ZIP under the private upload directory, and marks the
//! request ready. The ZIP is served by `GET /api/me/data-exports/{id}/download` to its owner only,
//! through a link signed for 24 hours.
//!
//! Here: the request's lifecycle and the download; `job`: the job and the ZIP; `document`:
//! `data.json`.

mod document;
mod job;

pub use document::{gather, DataExport, FORMAT_VERSION};
pub use job::{ExportPayload, PrepareExport, README_ES};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::error::{AppError, AppResult};
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::files;
use crate::services::platform::jobs::{self, NewJob};
use crate::services::privacy::requests;
use crate::state::AppState;

/// How long a ready export may be downloaded.
pub const DOWNLOAD_TTL_HOURS: i64 = 24;
/// Exports a customer may ask for in 24 hours.
pub const EXPORTS_PER_DAY: u64 = 3;

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
    requests::settle_failed(&txn, st, Some(me)).await?;
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
    let inserted = requests::new_request(st, me, PrivacyRequestKind::Export, None, now)
        .insert(&txn)
        .await
        // Asked twice at once: the other request is the open one.
        .map_err(crate::error::unique_or(|| in_progress(0)))?;
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
    requests::job_key(PrivacyRequestKind::Export, request_id)
}

/// One of the caller's exports, with its download link while it is valid (404 when not theirs).
pub async fn status(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<ExportView> {
    let me = ctx.require_user()?.id;
    requests::settle_failed(&st.db, st, Some(me)).await?;
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

/// The ZIP of a ready export, for its owner with a valid, unexpired link: the request and where
/// its ZIP is stored. Anyone else, a bad signature or an expired link: 404 (401 without a token).
pub async fn downloadable(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    signed: files::Signature,
) -> AppResult<(privacy_request::Model, files::Stored)> {
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
    Ok((r, files::Stored::private(key)))
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
        let Some(stored) = r.storage_key.clone().map(files::Stored::private) else {
            continue;
        };
        let txn = begin_write(&st.db).await?;
        let cleared = privacy_request::Entity::update_many()
            .col_expr(
                privacy_request::Column::StorageKey,
                Expr::value(Option::<String>::None),
            )
            .col_expr(privacy_request::Column::UpdatedAt, Expr::value(now))
            .filter(privacy_request::Column::Id.eq(r.id))
            .filter(privacy_request::Column::StorageKey.eq(stored.key.as_str()))
            .exec(&txn)
            .await?;
        if cleared.rows_affected == 1 {
            files::forget(&txn, st, &stored).await?;
            txn.commit().await?;
            files::delete_now(st, std::slice::from_ref(&stored)).await;
            purged += 1;
        }
    }
    Ok(purged)
}
