//! The payments section: the providers' credentials and endpoints (`config.payments.webpay`,
//! `.flow`, `.mp`), the test provider, where notifications may come from, and the timeouts.

use std::collections::HashMap;

use ipnet::IpNet;
use secrecy::SecretString;

use super::reader::Reader;
use super::ConfigError;
use crate::entities::payment::Provider;

/// Transbank's public integration commerce code and secret (safe to ship as development defaults).
pub const WEBPAY_INTEGRATION_CODE: &str = "597055555532";
pub const WEBPAY_INTEGRATION_SECRET: &str =
    "579B532A7440BB0C9079DED94D31EA1615BACEB56610332264630D42D0A36B1C";

#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Pending orders older than this become `failed` (`PAYMENT_TIMEOUT_SECONDS`).
    pub timeout_seconds: i64,
    /// Timeout of each call to a payment provider (`PROVIDER_TIMEOUT_SECONDS`).
    pub provider_timeout_seconds: i64,
    /// HMAC key of the `test` payment provider's webhooks (`TEST_PAYMENT_SECRET`).
    pub test_secret: SecretString,
    /// The `test` provider works outside production, and in production only when enabled
    /// (`PAYMENTS_TEST_ENABLED`).
    pub test_enabled: bool,
    /// Per provider, the networks its notifications may come from (`<P>_WEBHOOK_ALLOWED_IPS`);
    /// absent: any. The client address honours `X-Forwarded-For` only from `TRUSTED_PROXIES`.
    pub webhook_allowed_ips: HashMap<Provider, Vec<IpNet>>,
    /// Webpay Plus; `None` when disabled (production without explicit credentials).
    pub webpay: Option<WebpayConfig>,
    /// Flow; `None` without `FLOW_API_KEY` and `FLOW_SECRET_KEY`.
    pub flow: Option<FlowConfig>,
    /// Mercado Pago; `None` without `MP_ACCESS_TOKEN` and `MP_WEBHOOK_SECRET`.
    pub mp: Option<MpConfig>,
}

/// Webpay Plus (providers.md §1).
#[derive(Debug, Clone)]
pub struct WebpayConfig {
    pub base_url: String,
    /// The API path prefix, version included.
    pub api_prefix: String,
    pub commerce_code: String,
    pub api_key_secret: SecretString,
}

/// Flow (providers.md §2).
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub base_url: String,
    pub api_key: String,
    pub secret_key: SecretString,
}

/// Mercado Pago Checkout Pro (providers.md §3).
#[derive(Debug, Clone)]
pub struct MpConfig {
    pub base_url: String,
    pub access_token: SecretString,
    pub webhook_secret: SecretString,
}

impl PaymentsConfig {
    pub(super) fn parse(r: &Reader<'_>, production: bool) -> Result<Self, ConfigError> {
        let mut webhook_allowed_ips = HashMap::new();
        for provider in [Provider::Test, Provider::Flow, Provider::Mp] {
            let var = format!("{}_WEBHOOK_ALLOWED_IPS", provider.as_str().to_uppercase());
            let nets = r.networks(&var)?;
            if !nets.is_empty() {
                webhook_allowed_ips.insert(provider, nets);
            }
        }
        Ok(PaymentsConfig {
            timeout_seconds: r.positive("PAYMENT_TIMEOUT_SECONDS", 1800)?,
            provider_timeout_seconds: r.positive("PROVIDER_TIMEOUT_SECONDS", 15)?,
            test_secret: r
                .text("TEST_PAYMENT_SECRET", "dev-test-payment-secret")
                .into(),
            test_enabled: !production || r.parse("PAYMENTS_TEST_ENABLED", false)?,
            webhook_allowed_ips,
            webpay: WebpayConfig::parse(r, production),
            flow: FlowConfig::parse(r),
            mp: MpConfig::parse(r),
        })
    }
}

impl WebpayConfig {
    fn parse(r: &Reader<'_>, production: bool) -> Option<Self> {
        let code = r.raw("WEBPAY_COMMERCE_CODE");
        let secret = r.raw("WEBPAY_API_KEY_SECRET");
        // Production never falls back to the public integration credentials.
        if production && (code.is_none() || secret.is_none()) {
            return None;
        }
        Some(WebpayConfig {
            base_url: r.base_url("WEBPAY_BASE_URL", "https://webpay3gint.transbank.cl"),
            api_prefix: r.base_url("WEBPAY_API_PREFIX", "/rswebpaytransaction/api/webpay/v1.2"),
            commerce_code: code.unwrap_or_else(|| WEBPAY_INTEGRATION_CODE.into()),
            api_key_secret: secret
                .unwrap_or_else(|| WEBPAY_INTEGRATION_SECRET.into())
                .into(),
        })
    }
}

impl FlowConfig {
    fn parse(r: &Reader<'_>) -> Option<Self> {
        let (api_key, secret_key) = (r.raw("FLOW_API_KEY")?, r.raw("FLOW_SECRET_KEY")?);
        Some(FlowConfig {
            base_url: r.base_url("FLOW_BASE_URL", "https://sandbox.flow.cl/api"),
            api_key,
            secret_key: secret_key.into(),
        })
    }
}

impl MpConfig {
    fn parse(r: &Reader<'_>) -> Option<Self> {
        let (access_token, webhook_secret) =
            (r.raw("MP_ACCESS_TOKEN")?, r.raw("MP_WEBHOOK_SECRET")?);
        Some(MpConfig {
            base_url: r.base_url("MP_BASE_URL", "https://api.mercadopago.com"),
            access_token: access_token.into(),
            webhook_secret: webhook_secret.into(),
        })
    }
}
