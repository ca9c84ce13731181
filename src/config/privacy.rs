//! The privacy section (Ley 21.719): the policy in force, how long requests may take, the
//! erasure's grace period and what is kept for how long.

use super::reader::Reader;
use super::ConfigError;

/// The default `PRIVACY_POLICY_VERSION`: the policy published when Ley 21.719 came into force.
pub const DEFAULT_PRIVACY_POLICY_VERSION: &str = "2026-12-01";

#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    /// `PRIVACY_POLICY_VERSION` (default `2026-12-01`): the privacy policy in force. Registration
    /// records it; a customer who accepted an older one is asked to accept again.
    pub policy_version: String,
    /// `PRIVACY_REQUEST_DUE_DAYS` (default 30): how long the store has to answer a personal-data
    /// request (export, erasure).
    pub request_due_days: i64,
    /// `ERASURE_GRACE_DAYS` (default 7): how long after asking a customer may cancel the erasure
    /// of their account before it runs.
    pub erasure_grace_days: i64,
    /// `LEGAL_RETENTION_YEARS` (default 6): how long orders, payments and receipts are kept for
    /// the tax law, under a pseudonym once their customer is erased.
    pub legal_retention_years: i64,
    /// `MEDICINAL_DOC_RETENTION_DAYS` (default 365): how long a prescription or certificate is
    /// kept (row and file) after it expired or was rejected.
    pub medicinal_doc_retention_days: i64,
}

impl PrivacyConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        Ok(PrivacyConfig {
            policy_version: policy_version(r)?,
            request_due_days: r.positive("PRIVACY_REQUEST_DUE_DAYS", 30)?,
            erasure_grace_days: r.positive("ERASURE_GRACE_DAYS", 7)?,
            legal_retention_years: r.positive("LEGAL_RETENTION_YEARS", 6)?,
            medicinal_doc_retention_days: r.positive("MEDICINAL_DOC_RETENTION_DAYS", 365)?,
        })
    }
}

fn policy_version(r: &Reader<'_>) -> Result<String, ConfigError> {
    let v = r.text("PRIVACY_POLICY_VERSION", DEFAULT_PRIVACY_POLICY_VERSION);
    let ok = v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !ok {
        return Err(ConfigError(format!(
            "PRIVACY_POLICY_VERSION must be at most 32 letters, digits, '-', '.' or '_': {v:?}"
        )));
    }
    Ok(v)
}
