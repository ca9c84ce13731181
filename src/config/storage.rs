//! The storage section: where uploaded files are kept — a directory (`UPLOAD_DIR`, the default) or
//! an S3-compatible bucket every replica shares (`STORAGE_URL=s3://bucket/prefix`).

use secrecy::SecretString;

use super::reader::Reader;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `UPLOAD_DIR` (default `data/uploads`): the store itself without `STORAGE_URL` (public
    /// images under `public/`, private documents and export ZIPs under `private/`); with it, only
    /// where `dispensary migrate-files` copies from.
    pub upload_dir: std::path::PathBuf,
    /// `STORAGE_URL`: an S3-compatible bucket instead of `UPLOAD_DIR`.
    pub s3: Option<S3Config>,
}

/// An S3-compatible bucket (`STORAGE_URL=s3://bucket/prefix` and the `AWS_*`/`S3_*` variables).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Every object's key starts with it (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `S3_ENDPOINT`: a server other than AWS (MinIO, Ceph, R2, moto …); `http://` is accepted
    /// for one on the same host or private network.
    pub endpoint: Option<String>,
    /// `S3_FORCE_PATH_STYLE`: `https://host/bucket/key` rather than `https://bucket.host/key`.
    /// Default: true when `S3_ENDPOINT` is set (what S3-compatible servers expect), false on AWS.
    pub force_path_style: bool,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, both or neither (neither: the AWS default
    /// chain — a session token, web identity or the instance's role).
    pub credentials: Option<(String, SecretString)>,
}

impl StorageConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        Ok(StorageConfig {
            upload_dir: r.text("UPLOAD_DIR", "data/uploads").into(),
            s3: match r.raw("STORAGE_URL") {
                None => None,
                Some(raw) => Some(S3Config::parse(r, &raw)?),
            },
        })
    }
}

impl S3Config {
    fn parse(r: &Reader<'_>, raw: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError(format!("STORAGE_URL {why} (s3://bucket/prefix)"));
        let url = url::Url::parse(raw).map_err(|_| bad("is not a URL"))?;
        if url.scheme() != "s3" {
            return Err(bad(&format!("scheme must be s3, not {:?}", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(bad(
                "carries no credentials or options: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_ENDPOINT",
            ));
        }
        let bucket = url.host_str().unwrap_or_default().to_string();
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return Err(bad("names no valid bucket (3–63 of a-z, 0-9, '-', '.')"));
        }
        let prefix = url.path().trim_matches('/').to_string();
        if prefix.split('/').any(|s| s == "." || s == "..")
            || prefix.contains("//")
            || prefix.chars().any(|c| c.is_control())
        {
            return Err(bad("has a prefix that is not a plain path"));
        }
        let endpoint = match r.raw("S3_ENDPOINT") {
            None => None,
            Some(e) => {
                let parsed = url::Url::parse(&e).map_err(|_| {
                    ConfigError("S3_ENDPOINT is not a URL (http://127.0.0.1:9000)".into())
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(ConfigError(
                        "S3_ENDPOINT must be an http:// or https:// URL with a host".into(),
                    ));
                }
                Some(e.trim_end_matches('/').to_string())
            }
        };
        let credentials =
            match (r.raw("AWS_ACCESS_KEY_ID"), r.raw("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => Some((id, SecretString::from(secret))),
                (None, None) => None,
                _ => return Err(ConfigError(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither"
                        .into(),
                )),
            };
        Ok(S3Config {
            bucket,
            prefix,
            region: r.text("AWS_REGION", "us-east-1"),
            force_path_style: r.switch("S3_FORCE_PATH_STYLE", endpoint.is_some())?,
            endpoint,
            credentials,
        })
    }
}
