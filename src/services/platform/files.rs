//! Stored uploads: type decided by magic bytes (and required to agree with the extension), size
//! limited, stored under a random name, recorded in `files` with owner, purpose, size and SHA-256.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_graphql::UploadValue;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::actor::RequestCtx;
use crate::entities::file;
use crate::error::{AppError, AppResult};
use crate::services::platform::events::{self, DomainEvent};
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

/// Where public files live (served at `/uploads/<key>`).
pub fn public_dir(st: &AppState) -> PathBuf {
    st.config.storage.upload_dir.join("public")
}

/// Where private files live (never served directly).
pub fn private_dir(st: &AppState) -> PathBuf {
    st.config.storage.upload_dir.join("private")
}

struct Copied {
    kind: FileKind,
    size: u64,
    sha256: String,
}

/// Checks and copies an upload into `dest_dir/<key>` (blocking I/O, run off the executor).
fn copy_checked(
    mut src: std::fs::File,
    filename: &str,
    allowed: &[FileKind],
    dest_dir: &Path,
    key_stem: &str,
) -> AppResult<(Copied, PathBuf)> {
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
    std::fs::create_dir_all(dest_dir).map_err(AppError::internal)?;
    let path = dest_dir.join(format!("{key_stem}.{}", kind.extension()));
    let tmp = dest_dir.join(format!(".{key_stem}.part"));
    let mut out = std::fs::File::create(&tmp).map_err(AppError::internal)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = src.read(&mut buf).map_err(AppError::internal)?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
        out.write_all(&buf[..read]).map_err(AppError::internal)?;
    }
    out.sync_all().map_err(AppError::internal)?;
    std::fs::rename(&tmp, &path).map_err(AppError::internal)?;
    Ok((
        Copied {
            kind,
            size,
            sha256: hex::encode(hasher.finalize()),
        },
        path,
    ))
}

/// Stores an upload and records it. The returned path is the stored file (for clean-up if the
/// caller's transaction fails).
pub async fn store<C: ConnectionTrait>(
    st: &AppState,
    conn: &C,
    ctx: &RequestCtx,
    upload: UploadValue,
    purpose: &'static str,
    allowed: &'static [FileKind],
    public: bool,
) -> AppResult<(file::Model, PathBuf)> {
    let owner = ctx.require_user()?.id;
    let dir = if public {
        public_dir(st)
    } else {
        private_dir(st)
    };
    let stem = uuid::Uuid::new_v4().simple().to_string();
    let filename = upload.filename.clone();
    let (copied, path) = tokio::task::spawn_blocking(move || {
        copy_checked(upload.content, &filename, allowed, &dir, &stem)
    })
    .await
    .map_err(AppError::internal)??;
    let key = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let recorded = file::ActiveModel {
        owner_id: Set(owner),
        purpose: Set(purpose.to_string()),
        storage_key: Set(key),
        content_type: Set(copied.kind.mime().to_string()),
        size_bytes: Set(copied.size as i64),
        sha256: Set(copied.sha256),
        is_public: Set(public),
        created_at: Set(st.clock.now()),
        ..Default::default()
    }
    .insert(conn)
    .await;
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) => {
            discard(&path).await;
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
    Ok((recorded, path))
}

/// Removes a stored file whose record did not commit.
pub async fn discard(path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
}

/// The stable public URL of a public file.
pub fn public_url(f: &file::Model) -> String {
    format!("/uploads/{}", f.storage_key)
}

/// `POST /api/uploads/image`: an admin's product image.
pub async fn upload_image(
    st: &AppState,
    ctx: &RequestCtx,
    upload: UploadValue,
) -> AppResult<file::Model> {
    ctx.require_admin()?;
    let txn = crate::db::begin_write(&st.db).await?;
    let (f, path) = store(st, &txn, ctx, upload, "product_image", IMAGE_KINDS, true).await?;
    if let Err(e) = txn.commit().await {
        discard(&path).await;
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
    let (f, path) = store(st, &txn, ctx, upload, MEDICINAL_DOC, DOC_KINDS, false).await?;
    if let Err(e) = txn.commit().await {
        discard(&path).await;
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

/// A stored file the requester may read, and its path on disk. Public files are anyone's;
/// private ones their owner's and admins', or anyone's with a valid, unexpired signature.
/// Everyone else gets `not_found`, as if the file did not exist.
pub async fn readable(
    st: &AppState,
    ctx: &RequestCtx,
    id: i64,
    signed: Option<Signature>,
) -> AppResult<(file::Model, PathBuf)> {
    let missing = || AppError::not_found("File");
    let f = file::Entity::find_by_id(id)
        .one(&st.db)
        .await?
        .ok_or_else(missing)?;
    if f.is_public {
        let path = public_dir(st).join(&f.storage_key);
        return Ok((f, path));
    }
    let path = private_dir(st).join(&f.storage_key);
    if let Some(s) = signed {
        let subject = format!("file:{id}");
        if st
            .url_signer
            .valid(&subject, s.expires, &s.signature, st.clock.now())
        {
            return Ok((f, path));
        }
        return Err(missing());
    }
    match ctx.user() {
        Some(u) if u.id == f.owner_id => Ok((f, path)),
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
            Ok((f, path))
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
