//! Where stored files' bytes live, through the `object_store` crate: a directory on this machine
//! (`UPLOAD_DIR`, the default) or an S3-compatible bucket every replica shares (`STORAGE_URL`).
//! Two areas: `public/` (product images, served at `/uploads/<key>`) and `private/` (medicinal
//! documents, data-export ZIPs), the same layout in both backends. Nothing here decides who may
//! read what: objects are never public in the bucket, every read goes through the API.
//!
//! A store that cannot be reached is [`StorageError::Unavailable`] after a few quick retries,
//! answered as 503 with `Retry-After`; a missing object is `None`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::storage::{S3Config, StorageConfig};
use crate::error::AppError;

/// How long a client should wait before retrying a request the store could not serve.
pub const STORAGE_RETRY_AFTER_SECONDS: u64 = 5;

/// The two areas of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Product images: served to anyone at `/uploads/<key>`.
    Public,
    /// Medicinal documents and data-export ZIPs: only through the API's checks.
    Private,
}

impl Area {
    pub fn of(public: bool) -> Self {
        if public {
            Area::Public
        } else {
            Area::Private
        }
    }

    pub fn dir(self) -> &'static str {
        match self {
            Area::Public => "public",
            Area::Private => "private",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store did not answer, or refused (credentials, permissions, a missing bucket).
    #[error("the file store is unavailable: {0}")]
    Unavailable(String),
    /// A key that is not a plain relative path (never produced by this server).
    #[error("not a storage key: {0:?}")]
    BadKey(String),
    /// Reading the local file to store.
    #[error("reading the file to store: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "file store unavailable");
                AppError::storage_unavailable(STORAGE_RETRY_AFTER_SECONDS)
            }
            other => AppError::internal(other),
        }
    }
}

/// A stored object being read: its size and its bytes, streamed.
pub struct Object {
    pub size: u64,
    pub stream: BoxStream<'static, Result<Vec<u8>, std::io::Error>>,
}

/// The store of this process (cheap to clone).
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// `local` or `s3`, for `/readyz` and the logs.
    backend: &'static str,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend)
            .finish()
    }
}

/// How much of an upload is held in memory before it goes out as a part of a multipart upload.
const PART_BYTES: usize = 5 * 1024 * 1024;

impl Storage {
    /// The store `config` names: the bucket when `STORAGE_URL` is set, `UPLOAD_DIR` otherwise
    /// (created when missing).
    pub fn new(config: &StorageConfig) -> Result<Self, StorageError> {
        match &config.s3 {
            Some(s3) => Ok(Storage {
                store: Arc::new(bucket(s3)?),
                backend: "s3",
            }),
            None => Self::local(&config.upload_dir),
        }
    }

    /// The directory `dir` as a store (for `migrate-files`, which reads `UPLOAD_DIR` whatever
    /// `STORAGE_URL` says).
    pub fn local(dir: &std::path::Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StorageError::Unavailable(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Storage {
            store: Arc::new(fs),
            backend: "local",
        })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    fn path(area: Area, key: &str) -> Result<ObjectPath, StorageError> {
        let plain = !key.is_empty()
            && key.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if !plain {
            return Err(StorageError::BadKey(key.to_string()));
        }
        ObjectPath::parse(format!("{}/{key}", area.dir()))
            .map_err(|_| StorageError::BadKey(key.to_string()))
    }

    /// Stores the local file `file` at `key`, read and sent a part at a time (a multipart upload
    /// above [`PART_BYTES`]); the object appears whole or not at all.
    pub async fn put_file(
        &self,
        area: Area,
        key: &str,
        file: std::fs::File,
    ) -> Result<(), StorageError> {
        let path = Self::path(area, key)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut out = BufWriter::with_capacity(self.store.clone(), path, PART_BYTES);
        let mut buf = vec![0u8; 256 * 1024];
        let written: Result<(), StorageError> = async {
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                out.write_all(&buf[..n]).await.map_err(unavailable_io)?;
            }
        }
        .await;
        finish(out, written).await
    }

    /// Stores `bytes` at `key` in one request.
    pub async fn put_bytes(
        &self,
        area: Area,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StorageError> {
        let path = Self::path(area, key)?;
        self.store
            .put(&path, bytes.into())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The object at `key`, streamed; `None` when there is none.
    pub async fn get(&self, area: Area, key: &str) -> Result<Option<Object>, StorageError> {
        let path = Self::path(area, key)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(Some(Object {
                size: found.meta.size,
                stream: found
                    .into_stream()
                    .map(|chunk| {
                        chunk
                            .map(|b| b.to_vec())
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    })
                    .boxed(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The whole object at `key` (for files of at most a few MB); `None` when there is none.
    pub async fn read(&self, area: Area, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = Self::path(area, key)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(unavailable)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The size of the object at `key`; `None` when there is none.
    pub async fn size(&self, area: Area, key: &str) -> Result<Option<u64>, StorageError> {
        let path = Self::path(area, key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Removes the object at `key`; one already gone is not an error.
    pub async fn delete(&self, area: Area, key: &str) -> Result<(), StorageError> {
        let path = Self::path(area, key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// What [`Storage::copy_into`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    pub copied: u64,
    /// Already in the destination with the same size (an earlier run's).
    pub present: u64,
    pub failed: u64,
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} copied, {} already there, {} failed",
            self.copied, self.present, self.failed
        )
    }
}

impl Storage {
    /// Copies every object of both areas into `dest`, streamed, skipping those `dest` already
    /// holds with the same size — so a second run copies nothing and an interrupted one resumes.
    /// Temporary files (`*.part`, `.*`) are left out. Each failure is logged and counted.
    pub async fn copy_into(&self, dest: &Storage) -> Result<CopyReport, StorageError> {
        let mut report = CopyReport::default();
        for area in [Area::Public, Area::Private] {
            let prefix = ObjectPath::from(area.dir());
            let mut listed = self.store.list(Some(&prefix));
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(unavailable)?;
                let Some(key) = meta
                    .location
                    .as_ref()
                    .strip_prefix(area.dir())
                    .and_then(|k| k.strip_prefix('/'))
                    .map(str::to_string)
                else {
                    continue;
                };
                let temporary = key.ends_with(".part")
                    || key.split('/').any(|s| s.starts_with('.'))
                    || Self::path(area, &key).is_err();
                if temporary {
                    continue;
                }
                if dest.size(area, &key).await? == Some(meta.size) {
                    report.present += 1;
                    continue;
                }
                match self.copy_one(dest, area, &key).await {
                    Ok(()) => report.copied += 1,
                    Err(e) => {
                        tracing::warn!(area = area.dir(), key, error = %e, "file not copied");
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    async fn copy_one(&self, dest: &Storage, area: Area, key: &str) -> Result<(), StorageError> {
        let Some(mut object) = self.get(area, key).await? else {
            return Ok(());
        };
        let mut out =
            BufWriter::with_capacity(dest.store.clone(), Self::path(area, key)?, PART_BYTES);
        let written: Result<(), StorageError> = async {
            while let Some(chunk) = object.stream.next().await {
                out.write_all(&chunk?).await.map_err(unavailable_io)?;
            }
            Ok(())
        }
        .await;
        finish(out, written).await
    }
}

/// Completes an upload whose bytes were all `written`, or abandons it (its parts removed) when
/// they were not: the object appears whole or not at all.
async fn finish(mut out: BufWriter, written: Result<(), StorageError>) -> Result<(), StorageError> {
    match written {
        Ok(()) => out.shutdown().await.map_err(unavailable_io),
        Err(e) => {
            let _ = out.abort().await;
            Err(e)
        }
    }
}

fn unavailable(e: object_store::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn unavailable_io(e: std::io::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// The bucket, with short timeouts and few retries: a store that is down is answered as 503 in a
/// few seconds, not after object_store's default three minutes of retries.
fn bucket(s3: &S3Config) -> Result<PrefixStore<object_store::aws::AmazonS3>, StorageError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_virtual_hosted_style_request(!s3.force_path_style)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(3))
                .with_timeout(Duration::from_secs(60))
                .with_allow_http(
                    s3.endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                ),
        )
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        });
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some((id, secret)) = &s3.credentials {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret.expose_secret());
    }
    let store = builder
        .build()
        .map_err(|e| StorageError::Unavailable(e.to_string()))?;
    Ok(PrefixStore::new(store, s3.prefix.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_relative_paths() {
        assert_eq!(
            Storage::path(Area::Public, "ab12.png").unwrap().as_ref(),
            "public/ab12.png"
        );
        assert_eq!(
            Storage::path(Area::Private, "exports/data-export-3.zip")
                .unwrap()
                .as_ref(),
            "private/exports/data-export-3.zip"
        );
        for bad in ["", "../x", "a/../b", "/abs", "a//b", "a b", "a\0b", "x/."] {
            assert!(Storage::path(Area::Private, bad).is_err(), "{bad:?}");
        }
    }
}
