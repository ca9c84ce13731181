//! Medicinal documents (spec §4, §5): a customer submits a prescription or certificate, an admin
//! approves or rejects it, and an approved, unexpired document opens the medicinal catalogue.
//! The files are health data: private on disk, readable only by their owner and admins.

use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationDef, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::domain::Timestamp;
use crate::entities::consent::{ConsentPurpose, ConsentSource};
use crate::entities::medicinal_document::{self, DocStatus, DocType};
use crate::entities::{file, user};
use crate::error::{AppError, AppResult};
use crate::services::accounts::consents;
use crate::services::platform::events::{self, ChangedBy, DomainEvent};
use crate::services::platform::files::{self, DOC_KINDS, MEDICINAL_DOC};
use crate::services::platform::pagination::{like_pattern, Page};
use crate::state::AppState;

/// `POST /api/medicinal/me/docs`: the document type, and either a multipart `file` or the
/// `fileId` of an earlier `POST /api/uploads/doc`.
#[derive(Debug, Clone, InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[graphql(name = "SubmitMedicinalDocumentInput")]
#[schema(example = json!({"docType": "receta", "fileId": 12, "acceptHealthDataProcessing": true}))]
pub struct SubmitDocumentInput {
    pub doc_type: DocType,
    /// A file from `POST /api/uploads/doc` (omit when sending the file in the same request).
    #[serde(default)]
    pub file_id: Option<i64>,
    /// `true` gives the consent to the processing of health data (Ley 21.719) with this
    /// submission; without it, one given before (`POST /api/me/consents/health_data`) is needed,
    /// or the submission is refused with 403 `consent_required`. In a multipart form, the text
    /// `true`.
    #[serde(default, deserialize_with = "crate::util::lenient_bool")]
    pub accept_health_data_processing: Option<bool>,
}

/// `PATCH /api/admin/medicinal/docs/{id}`.
#[derive(Debug, Clone, InputObject, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[graphql(name = "ReviewMedicinalDocumentInput")]
#[schema(as = ReviewMedicinalDocumentInput)]
#[schema(example = json!({"status": "approved", "notes": "Receta vigente", "expiresAt": "2027-05-31T23:59:59Z"}))]
pub struct ReviewInput {
    /// `approved` or `rejected`.
    pub status: DocStatus,
    #[serde(default)]
    pub notes: Option<String>,
    /// When the approval lapses; without it the approval also sets the user's `validatedMedicinal`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

pub const NOTES_MAX: usize = 1000;

/// Whether `user_id` holds an approved document that has not expired at `now`.
pub async fn has_valid_document<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let n = medicinal_document::Entity::find()
        .filter(medicinal_document::Column::UserId.eq(user_id))
        .filter(medicinal_document::Column::Status.eq(DocStatus::Approved))
        .filter(
            Condition::any()
                .add(medicinal_document::Column::ExpiresAt.is_null())
                .add(medicinal_document::Column::ExpiresAt.gt(now)),
        )
        .count(conn)
        .await?;
    Ok(n > 0)
}

/// The caller's documents, newest first.
pub async fn list_mine(
    st: &AppState,
    ctx: &RequestCtx,
    page: Page,
) -> AppResult<(Vec<medicinal_document::Model>, u64)> {
    let me = ctx.require_user()?;
    let q = medicinal_document::Entity::find()
        .filter(medicinal_document::Column::UserId.eq(me.id))
        .order_by_desc(medicinal_document::Column::CreatedAt)
        .order_by_desc(medicinal_document::Column::Id);
    page.fetch(&st.db, q).await
}

/// Submits a document for review, from a file sent now or one uploaded before.
pub async fn submit(
    st: &AppState,
    ctx: &RequestCtx,
    input: SubmitDocumentInput,
    upload: Option<async_graphql::UploadValue>,
) -> AppResult<medicinal_document::Model> {
    let me = ctx.require_writable_user()?.id;
    let txn = begin_write(&st.db).await?;
    // Health data is processed only with express consent: checked before the file is stored.
    if input.accept_health_data_processing == Some(true) {
        consents::grant(
            &txn,
            st,
            ctx,
            me,
            ConsentPurpose::HealthData,
            ConsentSource::Document,
            true,
        )
        .await?;
    } else if !consents::has(&txn, st, me, ConsentPurpose::HealthData).await? {
        return Err(consents::health_data_required());
    }
    let (file_id, stored) = match (upload, input.file_id) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid(
                "fileId",
                "conflicting",
                "Send either a file or a fileId, not both",
            ))
        }
        (None, None) => {
            return Err(AppError::invalid(
                "file",
                "required",
                "Send a 'file' part (PDF, JPEG or PNG) or the fileId of an uploaded document",
            ))
        }
        (Some(upload), None) => {
            let (f, stored) =
                files::store(st, &txn, ctx, upload, MEDICINAL_DOC, DOC_KINDS, false).await?;
            (f.id, Some(stored))
        }
        (None, Some(id)) => {
            let owned = file::Entity::find_by_id(id)
                .filter(file::Column::OwnerId.eq(me))
                .filter(file::Column::Purpose.eq(MEDICINAL_DOC))
                .one(&txn)
                .await?;
            if owned.is_none() {
                return Err(AppError::invalid(
                    "fileId",
                    "unknown_file",
                    "No document upload of yours has this id",
                ));
            }
            let used = medicinal_document::Entity::find()
                .filter(medicinal_document::Column::FileId.eq(id))
                .count(&txn)
                .await?;
            if used > 0 {
                return Err(AppError::conflict_field(
                    "fileId",
                    "already_used",
                    "This file already belongs to a document",
                ));
            }
            (id, None)
        }
    };
    let result = async {
        let now = st.clock.now();
        let doc = medicinal_document::ActiveModel {
            user_id: Set(me),
            doc_type: Set(input.doc_type),
            status: Set(DocStatus::Pending),
            file_id: Set(file_id),
            notes: Set(None),
            reviewed_by: Set(None),
            reviewed_at: Set(None),
            expires_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(crate::error::unique_or(|| {
            AppError::conflict_field(
                "fileId",
                "already_used",
                "This file already belongs to a document",
            )
        }))?;
        events::record(
            &txn,
            st,
            ctx,
            DomainEvent::DocumentSubmitted {
                id: doc.id,
                doc_type: doc.doc_type,
                file_id: doc.file_id,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(doc)
    }
    .await;
    if result.is_err() {
        if let Some(stored) = stored {
            files::discard(st, &stored).await;
        }
    }
    result
}

/// Deletes one of the caller's documents (and its file) unless it was approved.
pub async fn delete_mine(st: &AppState, ctx: &RequestCtx, id: i64) -> AppResult<()> {
    let me = ctx.require_user()?.id;
    let txn = begin_write(&st.db).await?;
    let doc = medicinal_document::Entity::find_by_id(id)
        .filter(medicinal_document::Column::UserId.eq(me))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Medicinal document"))?;
    // Conditional on the status, so an approval landing meanwhile wins over the delete.
    let deleted = medicinal_document::Entity::delete_many()
        .filter(medicinal_document::Column::Id.eq(id))
        .filter(medicinal_document::Column::Status.ne(DocStatus::Approved))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 || doc.status == DocStatus::Approved {
        return Err(AppError::conflict_field(
            "status",
            "approved",
            "An approved document cannot be deleted",
        ));
    }
    let stored = delete_file_record(&txn, st, doc.file_id).await?;
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::DocumentDeleted {
            id,
            status: doc.status,
            file_id: doc.file_id,
        },
    )
    .await?;
    txn.commit().await?;
    files::delete_now(st, stored.as_slice()).await;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct DocFilter {
    pub status: Option<DocStatus>,
    /// Part of the owner's email or name.
    pub q: Option<String>,
}

fn doc_user() -> RelationDef {
    medicinal_document::Entity::belongs_to(user::Entity)
        .from(medicinal_document::Column::UserId)
        .to(user::Column::Id)
        .into()
}

/// Admin: documents by status and owner (email or name), oldest pending first is the review
/// queue's order; here newest first like every other admin list.
pub async fn list_admin(
    st: &AppState,
    ctx: &RequestCtx,
    f: DocFilter,
    page: Page,
) -> AppResult<(Vec<medicinal_document::Model>, u64)> {
    ctx.require_admin()?;
    let mut cond = Condition::all();
    if let Some(s) = f.status {
        cond = cond.add(medicinal_document::Column::Status.eq(s));
    }
    // A customer who withdrew the health-data consent takes their pending documents out of review.
    cond = cond.add(
        Condition::any()
            .add(medicinal_document::Column::Status.ne(DocStatus::Pending))
            .add(
                consents::health_data_withdrawn(Expr::col((
                    medicinal_document::Entity,
                    medicinal_document::Column::UserId,
                )))
                .not(),
            ),
    );
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = like_pattern(q);
        cond = cond.add(
            Condition::any()
                .add(Expr::col((user::Entity, user::Column::Email)).like(pattern.clone()))
                .add(
                    Expr::expr(Func::lower(Expr::col((user::Entity, user::Column::Name))))
                        .like(pattern),
                ),
        );
    }
    let q = medicinal_document::Entity::find()
        .join(JoinType::InnerJoin, doc_user())
        .filter(cond)
        .order_by_desc(medicinal_document::Column::CreatedAt)
        .order_by_desc(medicinal_document::Column::Id);
    page.fetch(&st.db, q).await
}

/// Admin: approves or rejects a pending document. The reviewer is the acting admin. An approval
/// without `expiresAt` also sets the owner's `validatedMedicinal`; one with `expiresAt` grants
/// access through the document until then.
pub async fn review(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    input: ReviewInput,
) -> AppResult<medicinal_document::Model> {
    let admin = ctx.require_admin()?.id;
    if input.status == DocStatus::Pending {
        return Err(AppError::invalid(
            "status",
            "invalid_value",
            "A review is 'approved' or 'rejected'",
        ));
    }
    let notes = input
        .notes
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > NOTES_MAX)
    {
        return Err(AppError::invalid(
            "notes",
            "too_long",
            format!("notes must be at most {NOTES_MAX} characters"),
        ));
    }
    let now = st.clock.now();
    let expires_at = input.expires_at.map(|t| t.0);
    if expires_at.is_some_and(|t| t <= now) {
        return Err(AppError::invalid(
            "expiresAt",
            "in_past",
            "expiresAt must be in the future",
        ));
    }
    if input.status == DocStatus::Rejected && expires_at.is_some() {
        return Err(AppError::invalid(
            "expiresAt",
            "not_applicable",
            "Only an approval has an expiry",
        ));
    }
    let txn = begin_write(&st.db).await?;
    let owner = medicinal_document::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Medicinal document"))?
        .user_id;
    let withdrawn = user::Entity::find_by_id(owner)
        .filter(consents::health_data_withdrawn(Expr::col((
            user::Entity,
            user::Column::Id,
        ))))
        .count(&txn)
        .await?;
    if withdrawn > 0 {
        return Err(AppError::conflict_field(
            "status",
            "consent_withdrawn",
            "The customer withdrew their consent to the processing of health data; this document is out of review until they give it again",
        ));
    }
    // Compare-and-set on `pending`: two admins reviewing at once cannot both decide.
    let updated = medicinal_document::Entity::update_many()
        .col_expr(
            medicinal_document::Column::Status,
            Expr::value(input.status),
        )
        .col_expr(
            medicinal_document::Column::Notes,
            Expr::value(notes.clone()),
        )
        .col_expr(medicinal_document::Column::ReviewedBy, Expr::value(admin))
        .col_expr(medicinal_document::Column::ReviewedAt, Expr::value(now))
        .col_expr(
            medicinal_document::Column::ExpiresAt,
            Expr::value(expires_at),
        )
        .col_expr(medicinal_document::Column::UpdatedAt, Expr::value(now))
        .filter(medicinal_document::Column::Id.eq(id))
        .filter(medicinal_document::Column::Status.eq(DocStatus::Pending))
        .exec(&txn)
        .await?;
    let doc = medicinal_document::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("Medicinal document"))?;
    if updated.rows_affected == 0 {
        return Err(AppError::conflict_field(
            "status",
            "not_pending",
            format!(
                "Only pending documents can be reviewed; this one is {}",
                doc.status.as_str()
            ),
        ));
    }
    if doc.status == DocStatus::Approved && expires_at.is_none() {
        let owner = user::Entity::find_by_id(doc.user_id)
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::not_found("User"))?;
        let mut am: user::ActiveModel = owner.clone().into();
        am.validated_medicinal = Set(true);
        events::update_recorded(&txn, st, ctx, owner, am, &[], &[], |changes, _| {
            DomainEvent::UserUpdated {
                id: doc.user_id,
                by: ChangedBy::Review,
                changes,
                medicinal_document_id: Some(doc.id),
            }
        })
        .await?;
    }
    events::record(
        &txn,
        st,
        ctx,
        DomainEvent::DocumentReviewed {
            id,
            from: DocStatus::Pending,
            to: doc.status,
            user_id: doc.user_id,
            expires_at: doc.expires_at,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(doc)
}

/// Deletes a document's file record, in the caller's transaction, and enqueues the removal of its
/// bytes with it ([`files::forget`]); what to remove now once that commits.
async fn delete_file_record<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    file_id: i64,
) -> AppResult<Option<files::Stored>> {
    let Some(f) = file::Entity::find_by_id(file_id).one(conn).await? else {
        return Ok(None);
    };
    file::Entity::delete_by_id(file_id).exec(conn).await?;
    let stored = files::Stored::of(&f);
    files::forget(conn, st, &stored).await?;
    Ok(Some(stored))
}

/// Deletes the documents kept past `MEDICINAL_DOC_RETENTION_DAYS` after they expired or were
/// rejected — rows, file records and the files on disk — a batch at a time; how many. Each goes
/// in its own transaction, conditional on still being that old, so several instances may purge
/// at once. Audited as `medicinal_document.purged`.
pub async fn purge_retained(st: &AppState) -> AppResult<u64> {
    let now = st.clock.now();
    let cutoff = now - chrono::Duration::days(st.config.privacy.medicinal_doc_retention_days);
    let past_retention = || {
        Condition::any()
            .add(medicinal_document::Column::ExpiresAt.lt(cutoff))
            .add(
                Condition::all()
                    .add(medicinal_document::Column::Status.eq(DocStatus::Rejected))
                    .add(medicinal_document::Column::ReviewedAt.lt(cutoff)),
            )
    };
    let due = medicinal_document::Entity::find()
        .filter(past_retention())
        .order_by_asc(medicinal_document::Column::Id)
        .limit(200)
        .all(&st.db)
        .await?;
    let ctx = RequestCtx::anonymous("retention".into(), std::net::Ipv4Addr::LOCALHOST.into());
    let mut purged = 0;
    for doc in due {
        let txn = begin_write(&st.db).await?;
        let gone = medicinal_document::Entity::delete_many()
            .filter(medicinal_document::Column::Id.eq(doc.id))
            .filter(past_retention())
            .exec(&txn)
            .await?;
        if gone.rows_affected != 1 {
            continue;
        }
        let stored = delete_file_record(&txn, st, doc.file_id).await?;
        events::record(
            &txn,
            st,
            &ctx,
            DomainEvent::DocumentPurged {
                id: doc.id,
                user_id: doc.user_id,
                status: doc.status,
                file_id: doc.file_id,
            },
        )
        .await?;
        txn.commit().await?;
        files::delete_now(st, stored.as_slice()).await;
        purged += 1;
    }
    Ok(purged)
}
