//! argon2id password hashing, run off the async executor (it is deliberately slow).

use std::sync::Arc;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::{AppError, AppResult};

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random secret, verified against when the account does not exist, so that a login
    /// for an unknown email costs the same time as one with a wrong password.
    dummy_hash: Arc<std::sync::OnceLock<String>>,
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32) -> Self {
        let params =
            Params::new(memory_kib, iterations, 1, None).unwrap_or_else(|_| Params::default());
        PasswordHasher {
            params,
            dummy_hash: Arc::new(std::sync::OnceLock::new()),
        }
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub async fn hash(&self, password: &Password) -> AppResult<String> {
        let params = self.params.clone();
        let pw = password.expose().to_string();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Self::argon2(params)
                .hash_password(pw.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
    }

    /// Whether `password` matches `hash`. A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> AppResult<bool> {
        let hash = match hash {
            Some(h) => h.to_string(),
            None => self.dummy().await?,
        };
        let pw = password.to_string();
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Self::argon2(params)
                        .verify_password(pw.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(AppError::internal)
    }

    async fn dummy(&self) -> AppResult<String> {
        if let Some(h) = self.dummy_hash.get() {
            return Ok(h.clone());
        }
        let secret = Password::parse(&format!("x1{}", uuid::Uuid::new_v4()))?;
        let h = self.hash(&secret).await?;
        Ok(self.dummy_hash.get_or_init(|| h).clone())
    }
}
