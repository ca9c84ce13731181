//! The storage section: where uploaded files are kept.

use super::reader::Reader;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `UPLOAD_DIR` (default `data/uploads`): public images under `public/`, private documents
    /// and export ZIPs elsewhere.
    pub upload_dir: std::path::PathBuf,
}

impl StorageConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Self {
        StorageConfig {
            upload_dir: r.text("UPLOAD_DIR", "data/uploads").into(),
        }
    }
}
