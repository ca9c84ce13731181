//! The authentication section: token keys and lifetimes, the credential routes' limits, password
//! hashing, two-factor for admins, the keys for signed URLs and data at rest, and the seeded
//! admin. Production refuses weak or documented secrets here.

use secrecy::SecretString;

use super::reader::Reader;
use super::ConfigError;

pub const DEFAULT_SEED_ADMIN_EMAIL: &str = "admin@dispensario.local";
/// Documented development default; refused when `APP_ENV=production`.
pub const DEFAULT_SEED_ADMIN_PASSWORD: &str = "Admin12345!";
/// Development-only signing key, used when `JWT_SECRET` is unset outside production.
const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret-change-me-0123456789";
/// `DATA_ENCRYPTION_KEY` when unset outside production: documented, so never a secret, and
/// refused in production.
pub const DEV_DATA_ENCRYPTION_KEY: &str = "ZGV2LW9ubHktZGF0YS1rZXktbm90LWEtc2VjcmV0ISE=";

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `JWT_SECRET`: signs access tokens (at least 32 bytes in production).
    pub jwt_secret: SecretString,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    /// `AUTH_RATE_LIMIT_PER_MINUTE`: the credential routes' budget per client address.
    pub rate_limit_per_minute: u32,
    /// `API_KEY_RATE_LIMIT_PER_MINUTE` (default 600): each API key's budget of requests, whatever
    /// address it calls from.
    pub api_key_rate_limit_per_minute: u32,
    pub login_failure_limit: u32,
    pub login_failure_window_seconds: i64,
    /// Argon2id cost (memory KiB, iterations). Defaults follow OWASP's argon2id minimum; tests lower it.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// `ADMIN_REQUIRE_2FA` (default true in production, false elsewhere): admin operations answer
    /// 403 `mfa_required` to an admin without two-factor authentication.
    pub admin_require_2fa: bool,
    /// `URL_SIGNING_KEY` (optional, at least 32 bytes): the key of signed download URLs; unset,
    /// one is derived from `JWT_SECRET` (HKDF), so the token key never signs URLs itself.
    pub url_signing_key: Option<SecretString>,
    /// `DATA_ENCRYPTION_KEY`: seals TOTP secrets at rest. Required in production; elsewhere the
    /// documented [`DEV_DATA_ENCRYPTION_KEY`].
    pub data_encryption_key: KeyBytes,
    pub seed_admin_email: String,
    pub seed_admin_password: SecretString,
}

impl AuthConfig {
    pub(super) fn parse(r: &Reader<'_>, production: bool) -> Result<Self, ConfigError> {
        let jwt_secret = jwt_secret(r, production)?;
        let (seed_admin_email, seed_admin_password) = seed_admin(r, production)?;
        Ok(AuthConfig {
            jwt_secret: jwt_secret.into(),
            jwt_issuer: r.text("JWT_ISSUER", "dispensary"),
            jwt_audience: r.text("JWT_AUDIENCE", "dispensary-api"),
            access_token_ttl_seconds: r.positive("ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_token_ttl_seconds: r.positive("REFRESH_TOKEN_TTL_SECONDS", 2_592_000)?,
            rate_limit_per_minute: r.positive("AUTH_RATE_LIMIT_PER_MINUTE", 60)? as u32,
            api_key_rate_limit_per_minute: r.positive("API_KEY_RATE_LIMIT_PER_MINUTE", 600)? as u32,
            login_failure_limit: r.positive("LOGIN_FAILURE_LIMIT", 10)? as u32,
            login_failure_window_seconds: r.positive("LOGIN_FAILURE_WINDOW_SECONDS", 900)?,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            admin_require_2fa: r.parse("ADMIN_REQUIRE_2FA", production)?,
            url_signing_key: url_signing_key(r, production)?,
            data_encryption_key: data_encryption_key(r, production)?,
            seed_admin_email,
            seed_admin_password: seed_admin_password.into(),
        })
    }
}

fn jwt_secret(r: &Reader<'_>, production: bool) -> Result<String, ConfigError> {
    let secret = match r.raw("JWT_SECRET") {
        Some(s) if s.len() >= 32 => s,
        Some(_) if production => {
            return Err(ConfigError(
                "JWT_SECRET must be at least 32 bytes in production".into(),
            ))
        }
        None if production => {
            return Err(ConfigError(
                "JWT_SECRET is required in production (at least 32 bytes)".into(),
            ))
        }
        Some(s) => {
            tracing::warn!(
                "JWT_SECRET is shorter than 32 bytes; acceptable only outside production"
            );
            s
        }
        None => DEV_JWT_SECRET.to_string(),
    };
    if secret.is_empty() {
        return Err(ConfigError("JWT_SECRET must not be empty".into()));
    }
    Ok(secret)
}

fn url_signing_key(r: &Reader<'_>, production: bool) -> Result<Option<SecretString>, ConfigError> {
    Ok(match r.raw("URL_SIGNING_KEY") {
        Some(k) if k.len() >= 32 => Some(SecretString::from(k)),
        Some(_) if production => {
            return Err(ConfigError(
                "URL_SIGNING_KEY must be at least 32 bytes in production".into(),
            ))
        }
        Some(k) if !k.is_empty() => {
            tracing::warn!(
                "URL_SIGNING_KEY is shorter than 32 bytes; acceptable only outside production"
            );
            Some(SecretString::from(k))
        }
        _ => None,
    })
}

fn data_encryption_key(r: &Reader<'_>, production: bool) -> Result<KeyBytes, ConfigError> {
    let key = match r.raw("DATA_ENCRYPTION_KEY") {
        None if production => {
            return Err(ConfigError(
                "DATA_ENCRYPTION_KEY is required in production (base64 of 32 random bytes: `openssl rand -base64 32`)".into(),
            ))
        }
        Some(k) if production && k.trim() == DEV_DATA_ENCRYPTION_KEY => {
            return Err(ConfigError(
                "DATA_ENCRYPTION_KEY must not be the documented development key in production"
                    .into(),
            ))
        }
        None => DEV_DATA_ENCRYPTION_KEY.to_string(),
        Some(k) => k,
    };
    KeyBytes::parse(&key).map_err(|e| ConfigError(format!("DATA_ENCRYPTION_KEY {e}")))
}

/// The seeded admin's email and password (the documented default password is refused in
/// production; any password must meet the policy).
fn seed_admin(r: &Reader<'_>, production: bool) -> Result<(String, String), ConfigError> {
    let password = r.text("SEED_ADMIN_PASSWORD", DEFAULT_SEED_ADMIN_PASSWORD);
    if production && password == DEFAULT_SEED_ADMIN_PASSWORD {
        return Err(ConfigError(
            "SEED_ADMIN_PASSWORD must be set to a non-default value in production".into(),
        ));
    }
    if let Err(e) = crate::domain::Password::parse(&password) {
        return Err(ConfigError(format!(
            "SEED_ADMIN_PASSWORD does not meet the password policy: {}",
            e.message
        )));
    }
    let email = r.text("SEED_ADMIN_EMAIL", DEFAULT_SEED_ADMIN_EMAIL);
    let email = crate::domain::Email::parse(&email)
        .map_err(|_| ConfigError(format!("SEED_ADMIN_EMAIL is not a valid email: {email:?}")))?
        .into_inner();
    Ok((email, password))
}

/// 32 key bytes (`DATA_ENCRYPTION_KEY`); `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBytes(pub [u8; 32]);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

impl KeyBytes {
    /// Base64 (standard or URL-safe alphabet, padding optional) of exactly 32 bytes, as
    /// `openssl rand -base64 32` prints.
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine;
        let text = text.trim().trim_end_matches('=');
        let bytes = [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or("is not base64")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("must decode to 32 bytes (got {})", b.len()))?;
        Ok(KeyBytes(key))
    }
}
