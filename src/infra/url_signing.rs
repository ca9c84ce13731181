//! Signed URLs: links anyone holding them may follow until they expire (a private file's
//! `downloadUrl`, a data export's download), for `<a href>` and `<img src>` where no bearer token
//! can be sent. A URL carries `expires` (Unix seconds) and `signature`: hex HMAC-SHA256 of
//! `<subject>:<expires>` under the URL-signing key — `URL_SIGNING_KEY` when set, otherwise a key
//! derived from `JWT_SECRET` with HKDF-SHA256 (info `dispensary/url-signing/v1`), so the token
//! key itself never signs anything but tokens.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::Config;

/// What HKDF is told the derived key is for; a new version means a new key.
const HKDF_INFO: &[u8] = b"dispensary/url-signing/v1";

pub struct UrlSigner {
    key: [u8; 32],
}

impl UrlSigner {
    pub fn new(config: &Config) -> UrlSigner {
        // Either secret goes through HKDF: a key of its own for signing URLs, 32 bytes whatever
        // the length of what the operator set.
        let secret = config
            .auth
            .url_signing_key
            .as_ref()
            .unwrap_or(&config.auth.jwt_secret);
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, secret.expose_secret().as_bytes())
            .expand(HKDF_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        UrlSigner { key }
    }

    fn mac(&self, subject: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{subject}:{expires}").as_bytes());
        mac
    }

    /// `path?expires=…&signature=…` for `subject` (what the URL gives access to, e.g. `file:7`),
    /// valid until `expires`.
    pub fn url(&self, path: &str, subject: &str, expires: DateTime<Utc>) -> String {
        let expires = expires.timestamp();
        let signature = hex::encode(self.mac(subject, expires).finalize().into_bytes());
        format!("{path}?expires={expires}&signature={signature}")
    }

    /// Whether `signature` signs `subject` until `expires`, and `expires` is still ahead of `now`.
    /// The comparison takes the same time whatever the signature holds.
    pub fn valid(&self, subject: &str, expires: i64, signature: &str, now: DateTime<Utc>) -> bool {
        let signed = hex::decode(signature)
            .ok()
            .is_some_and(|sig| self.mac(subject, expires).verify_slice(&sig).is_ok());
        signed && expires > now.timestamp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url_key: Option<&str>) -> Config {
        let mut vars = std::collections::HashMap::new();
        vars.insert(
            "JWT_SECRET".to_string(),
            "a-jwt-secret-of-at-least-32-bytes!!".to_string(),
        );
        if let Some(k) = url_key {
            vars.insert("URL_SIGNING_KEY".to_string(), k.to_string());
        }
        Config::from_map(&vars).expect("a valid configuration")
    }

    fn signature_of(url: &str) -> &str {
        url.split("signature=").nth(1).expect("a signature")
    }

    #[test]
    fn signs_verifies_and_expires() {
        let signer = UrlSigner::new(&config(None));
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let until = now + chrono::Duration::minutes(5);
        let url = signer.url("/api/files/7", "file:7", until);
        assert!(url.starts_with("/api/files/7?expires=1800000300&signature="));
        let sig = signature_of(&url);
        assert!(signer.valid("file:7", until.timestamp(), sig, now));
        // Another subject, another expiry, a later clock or a mangled signature: refused.
        assert!(!signer.valid("file:8", until.timestamp(), sig, now));
        assert!(!signer.valid("file:7", until.timestamp() + 1, sig, now));
        assert!(!signer.valid("file:7", until.timestamp(), sig, until));
        assert!(!signer.valid("file:7", until.timestamp(), "zz", now));
        assert!(!signer.valid("file:7", until.timestamp(), &sig[..10], now));
    }

    #[test]
    fn the_key_is_not_the_token_key() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let derived = UrlSigner::new(&config(None));
        let url = derived.url("/x", "file:1", now);
        // HMAC under JWT_SECRET itself (what files and exports used before) does not verify.
        let mut under_jwt =
            Hmac::<Sha256>::new_from_slice(b"a-jwt-secret-of-at-least-32-bytes!!").unwrap();
        under_jwt.update(format!("file:1:{}", now.timestamp()).as_bytes());
        assert_ne!(
            signature_of(&url),
            hex::encode(under_jwt.finalize().into_bytes())
        );
        // URL_SIGNING_KEY, when set, is the key: a signature under one does not pass the other.
        let own = UrlSigner::new(&config(Some("another-key-only-for-signing-urls-32b")));
        let later = now + chrono::Duration::minutes(1);
        let own_url = own.url("/x", "file:1", later);
        assert!(own.valid("file:1", later.timestamp(), signature_of(&own_url), now));
        assert!(!derived.valid("file:1", later.timestamp(), signature_of(&own_url), now));
    }
}
