//! Standard Webhooks signing (<https://www.standardwebhooks.com>): a secret `whsec_<base64>`,
//! and per message `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 of
//! HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` — several space-separated while a rotated
//! secret still signs. Secrets are stored sealed under `DATA_ENCRYPTION_KEY` (`seal`) and opened
//! to sign (`signing_secrets`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use chrono::{DateTime, Utc};

use crate::entities::webhook_endpoint;
use crate::error::{AppError, AppResult};
use crate::infra::crypto::DataKey;
use crate::state::AppState;

pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (Standard Webhooks suggests 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new signing secret.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn key(st: &AppState) -> DataKey {
    DataKey::new(&st.config.auth.data_encryption_key)
}

fn context(endpoint_id: i64) -> String {
    format!("webhook_endpoint:{endpoint_id}")
}

/// A secret as stored: sealed under `DATA_ENCRYPTION_KEY`, bound to its endpoint.
pub fn seal(st: &AppState, endpoint_id: i64, secret: &str) -> AppResult<String> {
    key(st).seal(secret.as_bytes(), &context(endpoint_id))
}

/// The secrets that sign now: the current one, and the previous one during its overlap.
pub fn signing_secrets(
    st: &AppState,
    e: &webhook_endpoint::Model,
    now: DateTime<Utc>,
) -> AppResult<Vec<String>> {
    let open = |sealed: &str| -> AppResult<String> {
        String::from_utf8(key(st).open(sealed, &context(e.id))?).map_err(AppError::internal)
    };
    let mut secrets = vec![open(&e.secret)?];
    if let (Some(previous), Some(until)) = (&e.previous_secret, e.previous_secret_until) {
        if until > now {
            secrets.push(open(previous)?);
        }
    }
    Ok(secrets)
}

/// One `v1,<base64>` signature of a message under `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> AppResult<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| AppError::internal("a webhook secret is not base64"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(AppError::internal)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> AppResult<String> {
    let signatures: AppResult<Vec<String>> = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect();
    Ok(signatures?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_reproduce_the_specifications_published_example() {
        // The Standard Webhooks reference libraries' test vector.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let new = new_secret();
        assert!(new.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&new[6..]).unwrap().len(), 32);
        let two = signature_header(&[new.clone(), new_secret()], "msg_1", 1, b"{}").unwrap();
        assert_eq!(two.split(' ').count(), 2);
        assert!(two.starts_with(&sign(&new, "msg_1", 1, b"{}").unwrap()));
    }
}
