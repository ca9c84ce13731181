//! Encryption at rest of the few values the store must be able to read back (TOTP secrets):
//! XChaCha20-Poly1305 under `DATA_ENCRYPTION_KEY`, a random 192-bit nonce per value, and the
//! owning row's identity as associated data, so a sealed value copied to another row does not open.
//!
//! A sealed value is `v1:` followed by base64 of nonce ‖ ciphertext ‖ tag. The version prefix
//! leaves room for key rotation.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::config::KeyBytes;
use crate::error::{AppError, AppResult};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// The cipher under `DATA_ENCRYPTION_KEY`.
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn new(key: &KeyBytes) -> Self {
        DataKey(key.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Encrypts `plain`, bound to `context` (e.g. `user_two_factor:42`).
    pub fn seal(&self, plain: &[u8], context: &str) -> AppResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Decrypts a value [`seal`](Self::seal)ed with this key and `context`. Anything else — another
    /// key, another context, a tampered value — is an internal error: the stored data or the
    /// configured key is wrong, not the request.
    pub fn open(&self, sealed: &str, context: &str) -> AppResult<Vec<u8>> {
        let fail = || {
            AppError::internal(format!(
                "a value sealed for {context} does not open with DATA_ENCRYPTION_KEY"
            ))
        };
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(fail)?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| fail())?;
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey([byte; 32])
    }

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_context() {
        let k = key(7);
        let a = k.seal(b"JBSWY3DPEHPK3PXP", "user_two_factor:1").unwrap();
        let b = k.seal(b"JBSWY3DPEHPK3PXP", "user_two_factor:1").unwrap();
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            k.open(&a, "user_two_factor:1").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(k.open(&a, "user_two_factor:2").is_err());
        assert!(key(8).open(&a, "user_two_factor:1").is_err());
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open(&tampered, "user_two_factor:1").is_err());
        assert!(k.open("plain", "user_two_factor:1").is_err());
    }
}
