//! Stored uploads: type decided by magic bytes (and required to agree with the extension), size
//! limited, stored under a random name in the file store (`AppState::storage`: `UPLOAD_DIR` or a
//! bucket), recorded in `files` with owner, purpose, size and SHA-256. Bytes whose record goes are
//! removed by a job enqueued with the deletion ([`forget`]).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use async_graphql::UploadValue;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::actor::RequestCtx;
use crate::entities::file;
use crate::error::{AppError, AppResult};
pub use crate::infra::storage::Area;
use crate::infra::storage::StorageError;
use crate::services::platform::events::{self, DomainEvent};
use crate::services::platform::jobs::{self, Job, JobError, NewJob};
use crate::state::AppState;

/// The largest accepted file.
pub const MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl FileKind {
    pub fn mime(self) -> &'static str {
        match self {
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
            FileKind::Webp => "image/webp",
            FileKind::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Jpeg => "jpg",
            FileKind::Png => "png",
            FileKind::Webp => "webp",
            FileKind::Pdf => "pdf",
        }
    }

    fn from_mime(mime: &str) -> Option<Self> {
        Some(match mime {
            "image/jpeg" => FileKind::Jpeg,
            "image/png" => FileKind::Png,
            "image/webp" => FileKind::Webp,
            "application/pdf" => FileKind::Pdf,
            _ => return None,
        })
    }

    fn from_extension(name: &str) -> Option<Self> {
        let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "jpg" | "jpeg" => FileKind::Jpeg,
            "png" => FileKind::Png,
            "webp" => FileKind::Webp,
            "pdf" => FileKind::Pdf,
            _ => return None,
        })
    }
}

pub const IMAGE_KINDS: &[FileKind] = &[FileKind::Jpeg, FileKind::Png, FileKind::Webp];

/// Decides the type from the first bytes and checks it against the allowed kinds and the name.
pub fn sniff(
    field: &str,
    head: &[u8],
    filename: &str,
    allowed: &[FileKind],
) -> AppResult<FileKind> {
    let sniffed = infer::get(head).and_then(|t| FileKind::from_mime(t.mime_type()));
    let Some(kind) = sniffed.filter(|k| allowed.contains(k)) else {
        let names: Vec<&str> = allowed.iter().map(|k| k.extension()).collect();
        return Err(AppError::invalid(
            field,
            "unsupported_type",
            format!("The file's content is not one of: {}", names.join(", ")),
        ));
    };
    if FileKind::from_extension(filename) != Some(kind) {
        return Err(AppError::invalid(
            field,
            "type_mismatch",
            format!(
                "The file's content is {} but its name does not say so",
                kind.mime()
            ),
        ));
    }
    Ok(kind)
}

/// Where a stored file's bytes are: its area and key in the store (`AppState::storage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub public: bool,
    pub key: String,
}

impl Stored {
    /// A recorded file's bytes.
    pub fn of(f: &file::Model) -> Self {
        Stored {
            public: f.is_public,
            key: f.storage_key.clone(),
        }
    }

    /// A private object that is not a `files` row (a data-export ZIP).
    pub fn private(key: impl Into<String>) -> Self {
        Stored {
            public: false,
            key: key.into(),
        }
    }

    pub fn area(&self) -> Area {
        Area::of(self.public)
    }
}

struct Checked {
    kind: FileKind,
    size: u64,
    sha256: String,
}

/// Checks an upload — size, type by its first bytes, SHA-256 — and rewinds it (blocking I/O, run
/// off the executor).
fn check(src: &mut std::fs::File, filename: &str, allowed: &[FileKind]) -> AppResult<Checked> {
    let size = src.metadata().map_err(AppError::internal)?.len();
    if size == 0 {
        return Err(AppError::invalid("file", "empty", "The file is empty"));
    }
    if size > MAX_UPLOAD_BYTES {
        return Err(AppError::too_large("file", "The file is larger than 10 MB"));
    }
    src.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
    let mut head = [0u8; 64];
    let n = src.read(&mut head).map_err(AppError::internal)?;
    let kind = sniff("file", &head[..n], filename, allowed)?;
    src.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
    let mut hasher = Sha256::new();
    std::io::copy(src, &mut hasher).map_err(AppError::internal)?;
    src.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
    Ok(Checked {
        kind,
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Stores an upload — checked, then streamed to the store under a random key — and records it.
/// The returned [`Stored`] is for clean-up ([`discard`]) if the caller's transaction fails.
pub async fn store<C: ConnectionTrait>(
    st: &AppState,
    conn: &C,
    ctx: &RequestCtx,
    upload: UploadValue,
    purpose: &'static str,
    allowed: &'static [FileKind],
    public: bool,
) -> AppResult<(file::Model, Stored)> {
    let owner = ctx.require_user()?.id;
    let filename = upload.filename.clone();
    let mut content = upload.content;
    let (checked, content) = tokio::task::spawn_blocking(move || {
        check(&mut content, &filename, allowed).map(|c| (c, content))
    })
    .await
    .map_err(AppError::internal)??;
    let stem = uuid::Uuid::new_v4().simple().to_string();
    let stored = Stored {
        public,
        key: format!("{stem}.{}", checked.kind.extension()),
    };
    st.storage
        .put_file(stored.area(), &stored.key, content)
        .await?;
    let recorded = file::ActiveModel {
        owner_id: Set(owner),
        purpose: Set(purpose.to_string()),
        storage_key: Set(stored.key.clone()),
        content_type: Set(checked.kind.mime().to_string()),
        size_bytes: Set(checked.size as i64),
        sha256: Set(checked.sha256),
        is_public: Set(public),
        created_at: Set(st.clock.now()),
        ..Default::default()
    }
    .insert(conn)
    .await;
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) => {
            discard(st, &stored).await;
            return Err(e.into());
        }
    };
    events::record(
        conn,
        st,
        ctx,
        DomainEvent::FileUploaded {
            id: recorded.id,
            purpose: recorded.purpose.clone(),
            content_type: recorded.content_type.clone(),
            size_bytes: recorded.size_bytes,
        },
    )
    .await?;
    Ok((recorded, stored))
}

/// Removes stored bytes whose record did not commit (nothing points to them). A store that
/// cannot be reached leaves them (logged): they are unreachable through the API.
pub async fn discard(st: &AppState, stored: &Stored) {
    if let Err(e) = st.storage.delete(stored.area(), &stored.key).await {
        tracing::warn!(error = %e, "an uncommitted upload's bytes could not be removed");
    }
}

/// The job that removes the bytes of a file whose record is gone (a product image replaced, a
/// document purged, an account erased, an export expired). Enqueued by [`forget`] in the same
/// transaction as the deletion, so the bytes go exactly when the deletion commits — through a
/// crash or an outage of the store (retried with backoff).
pub struct DeleteStored;

impl Job for DeleteStored {
    const KIND: &'static str = "file.delete";
    type Context = AppState;
    type Payload = Stored;

    async fn run(&self, st: &AppState, p: Stored) -> Result<(), JobError> {
        match st.storage.delete(p.area(), &p.key).await {
            Ok(()) => Ok(()),
            Err(e @ StorageError::BadKey(_)) => Err(JobError::Fatal(e.to_string())),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}

/// The store may be down for hours: 20 attempts with backoff span more than a day.
const DELETE_ATTEMPTS: i32 = 20;

fn delete_job_key(stored: &Stored) -> String {
    format!("file.delete:{}/{}", stored.area().dir(), stored.key)
}

/// Removes `stored`'s bytes once the caller's transaction commits: enqueues [`DeleteStored`] in
/// it; [`delete_now`] after the commit runs it at once.
pub async fn forget<C: ConnectionTrait>(conn: &C, st: &AppState, stored: &Stored) -> AppResult<()> {
    let job = NewJob::of::<DeleteStored>(stored)?
        .unique(delete_job_key(stored))
        .max_attempts(DELETE_ATTEMPTS);
    jobs::enqueue(conn, st.clock.now(), job).await?;
    Ok(())
}

/// After the commit: runs the removals [`forget`] enqueued now; one the store refuses stays
/// queued for the runner.
pub async fn delete_now(st: &AppState, stored: &[Stored]) {
    for s in stored {
        if let Err(e) = jobs::run_now_by_key(st, &DeleteStored, &delete_job_key(s)).await {
            tracing::warn!(error = %e.message, "removing stored bytes is left to the job runner");
        }
    }
}

/// The stable public URL of a public file.
pub fn public_url(f: &file::Model) -> String {
    format!("/uploads/{}", f.storage_key)
}

/// The public file stored at `key` (what `/uploads/<key>` serves); `None` for any other key,
/// private files' included.
pub async fn public_file(st: &AppState, key: &str) -> AppResult<Option<file::Model>> {
    if key.len() > 80 {
        return Ok(None);
    }
    public_at(&st.db, key).await
}

async fn public_at<C: ConnectionTrait>(conn: &C, key: &str) -> AppResult<Option<file::Model>> {
    Ok(file::Entity::find()
        .filter(file::Column::StorageKey.eq(key))
        .filter(file::Column::IsPublic.eq(true))
        .one(conn)
        .await?)
}

/// Deletes the record of the public file at `key`, in the caller's transaction, and enqueues the
/// removal of its bytes with it ([`forget`]); what to remove at once after the commit (`None`:
/// no such file).
pub async fn release_public<C: ConnectionTrait>(
    conn: &C,
    st: &AppState,
    key: &str,
) -> AppResult<Option<Stored>> {
    let Some(f) = public_at(conn, key).await? else {
        return Ok(None);
    };
    file::Entity::delete_by_id(f.id).exec(conn).await?;
    let stored = Stored::of(&f);
    forget(conn, st, &stored).await?;
    Ok(Some(stored))
}

/// `POST /api/uploads/image`: an admin's product image.
pub async fn upload_image(
    st: &AppState,
    ctx: &RequestCtx,
    upload: UploadValue,
) -> AppResult<file::Model> {
    ctx.require_admin()?;
    let txn = crate::db::begin_write(&st.db).await?;
    let (f, stored) = store(st, &txn, ctx, upload, "product_image", IMAGE_KINDS, true).await?;
    if let Err(e) = txn.commit().await {
        discard(st, &stored).await;
        return Err(e.into());
    }
    Ok(f)
}

/// Medicinal documents: PDF, JPEG or PNG.
pub const DOC_KINDS: &[FileKind] = &[FileKind::Pdf, FileKind::Jpeg, FileKind::Png];
/// The `purpose` of a medicinal document's file.
pub const MEDICINAL_DOC: &str = "medicinal_doc";
/// How long a signed download URL stays valid.
pub const SIGNED_URL_TTL_SECONDS: i64 = 300;

/// `POST /api/uploads/doc`: a private document of the caller's, to attach to a medicinal
/// document afterwards.
pub async fn upload_document(
    st: &AppState,
    ctx: &RequestCtx,
    upload: UploadValue,
) -> AppResult<file::Model> {
    ctx.require_writable_user()?;
    let txn = crate::db::begin_write(&st.db).await?;
    let (f, stored) = store(st, &txn, ctx, upload, MEDICINAL_DOC, DOC_KINDS, false).await?;
    if let Err(e) = txn.commit().await {
        discard(st, &stored).await;
        return Err(e.into());
    }
    Ok(f)
}

/// Where the file's bytes are served: `/api/files/{id}` (bearer: owner or admin).
pub fn file_url(id: i64) -> String {
    format!("/api/files/{id}")
}

/// A URL anyone holding it may download the file from until it expires (a few minutes), for
/// `<a href>` and `<img src>` where no bearer token can be sent.
pub fn signed_url(st: &AppState, id: i64) -> (String, DateTime<Utc>) {
    let expires = st.clock.now() + chrono::Duration::seconds(SIGNED_URL_TTL_SECONDS);
    let url = st
        .url_signer
        .url(&file_url(id), &format!("file:{id}"), expires);
    (url, expires)
}

/// The `expires` and `signature` of a signed URL.
#[derive(Debug, Clone, Deserialize)]
pub struct Signature {
    pub expires: i64,
    pub signature: String,
}

/// A stored file the requester may read. Public files are anyone's;
/// private ones their owner's and admins', or anyone's with a valid, unexpired signature.
/// Everyone else gets `not_found`, as if the file did not exist.
pub async fn readable(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    signed: Option<Signature>,
) -> AppResult<file::Model> {
    let missing = || AppError::not_found("File");
    let f = file::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(missing)?;
    if f.is_public {
        return Ok(f);
    }
    if let Some(s) = signed {
        let subject = format!("file:{id}");
        if st
            .url_signer
            .valid(&subject, s.expires, &s.signature, st.clock.now())
        {
            return Ok(f);
        }
        return Err(missing());
    }
    match ctx.user() {
        Some(u) if u.id == f.owner_id => Ok(f),
        Some(u) if u.role == crate::entities::user::Role::Admin => {
            // An admin reading someone's health data leaves a trace.
            let txn = crate::db::begin_write(&st.db).await?;
            events::record(
                &txn,
                st,
                ctx,
                DomainEvent::FileRead {
                    id: f.id,
                    purpose: f.purpose.clone(),
                    owner_id: f.owner_id,
                },
            )
            .await?;
            txn.commit().await?;
            Ok(f)
        }
        Some(_) => Err(missing()),
        None => match ctx.auth_problem {
            Some(problem) => Err(AppError::unauthorized(problem)),
            None => Err(missing()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
    ];
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0];

    #[test]
    fn magic_bytes_decide_and_must_agree_with_the_name() {
        assert_eq!(
            sniff("file", PNG, "a.PNG", IMAGE_KINDS).unwrap(),
            FileKind::Png
        );
        assert_eq!(
            sniff("file", JPEG, "photo.jpeg", IMAGE_KINDS).unwrap(),
            FileKind::Jpeg
        );
        assert_eq!(
            sniff("file", PNG, "a.jpg", IMAGE_KINDS)
                .unwrap_err()
                .details[0]
                .issue,
            "type_mismatch"
        );
        assert_eq!(
            sniff("file", b"just text", "a.png", IMAGE_KINDS)
                .unwrap_err()
                .details[0]
                .issue,
            "unsupported_type"
        );
        assert_eq!(
            sniff("file", b"%PDF-1.7\n", "a.pdf", IMAGE_KINDS)
                .unwrap_err()
                .details[0]
                .issue,
            "unsupported_type"
        );
    }
}
