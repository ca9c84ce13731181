//! Outbound webhooks: where they may be sent.

use super::reader::Reader;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS` (default false): endpoints may resolve to loopback and
    /// private addresses (development and tests). Link-local and cloud-metadata addresses never.
    pub allow_private_targets: bool,
    /// Production: endpoints must be `https`.
    pub https_only: bool,
}

impl WebhooksConfig {
    pub(super) fn parse(r: &Reader<'_>, production: bool) -> Result<Self, ConfigError> {
        Ok(WebhooksConfig {
            allow_private_targets: r.parse("WEBHOOK_ALLOW_PRIVATE_TARGETS", false)?,
            https_only: production,
        })
    }
}
