//! The job that prepares an export: it gathers `data.json`, writes the ZIP (with the customer's
//! own files and a `README.txt`) to the private area of the file store and marks the request ready.

use std::io::Write;

use chrono::Duration;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::document::{gather, DataExport, ExportFile};
use super::DOWNLOAD_TTL_HOURS;
use crate::actor::RequestCtx;
use crate::db::begin_write;
use crate::entities::privacy_request::{self, PrivacyRequestKind, PrivacyRequestState};
use crate::infra::storage::StorageError;
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::files;
use crate::services::platform::jobs::{Job, JobError};
use crate::services::privacy::requests;
use crate::state::AppState;

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
    const KIND: &'static str = PrivacyRequestKind::Export.job_kind();
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
        let key = format!("exports/data-export-{}.zip", r.id);
        let storage = st.storage.clone();
        let runtime = tokio::runtime::Handle::current();
        let (zip, size) = tokio::task::spawn_blocking(move || {
            write_zip(&data, &attachments, |f| {
                runtime.block_on(storage.read(files::Area::of(f.is_public), &f.storage_key))
            })
        })
        .await
        .map_err(|e| JobError::Retry(format!("export task: {e}")))??;
        st.storage
            .put_file(files::Area::Private, &key, zip)
            .await
            .map_err(|e| JobError::Retry(format!("storing the export: {e}")))?;
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

/// The export's ZIP, in a temporary file (rewound) and its size. `read` fetches an attachment's
/// bytes from the store (`None`: gone, listed in `data.json` but left out).
fn write_zip(
    data: &DataExport,
    attachments: &[ExportFile],
    read: impl Fn(&ExportFile) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<(std::fs::File, u64), JobError> {
    use std::io::Seek;
    use zip::write::SimpleFileOptions;
    let failed = |e: &dyn std::fmt::Display| JobError::Retry(format!("writing the export: {e}"));
    let out = tempfile::tempfile().map_err(|e| failed(&e))?;
    let mut zip = zip::ZipWriter::new(out);
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("data.json", opts).map_err(|e| failed(&e))?;
    let json = serde_json::to_vec_pretty(data).map_err(|e| failed(&e))?;
    zip.write_all(&json).map_err(|e| failed(&e))?;
    zip.start_file("README.txt", opts).map_err(|e| failed(&e))?;
    zip.write_all(README_ES.as_bytes())
        .map_err(|e| failed(&e))?;
    for f in attachments {
        let Some(bytes) = read(f).map_err(|e| JobError::Retry(format!("reading a file: {e}")))?
        else {
            continue;
        };
        zip.start_file(&f.path, opts).map_err(|e| failed(&e))?;
        zip.write_all(&bytes).map_err(|e| failed(&e))?;
    }
    let mut out = zip.finish().map_err(|e| failed(&e))?;
    let size = out.stream_position().map_err(|e| failed(&e))?;
    out.rewind().map_err(|e| failed(&e))?;
    Ok((out, size))
}

/// `README.txt` in every export (Spanish, for the customer).
pub const README_ES: &str = include_str!("../../../../docs/data-export-README.txt");
