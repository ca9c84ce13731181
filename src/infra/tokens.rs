//! JWTs (HS256): short-lived access tokens and rotating refresh tokens.
//!
//! Expiry is checked against the app's [`Clock`](crate::clock::Clock), not inside the JWT library,
//! so tests can expire tokens by moving the clock.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::entities::user::Role;
use secrecy::ExposeSecret;

pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub jti: String,
    /// `access` or `refresh`: a refresh token is never accepted as a bearer token, nor the reverse.
    pub typ: String,
    /// The refresh-token family (session) the token belongs to.
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.exp, 0).single().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Invalid,
    Expired,
    WrongType,
}

impl TokenProblem {
    pub fn message(self) -> &'static str {
        match self {
            TokenProblem::Invalid => "The token is invalid",
            TokenProblem::Expired => "The token has expired",
            TokenProblem::WrongType => "The token is not of the expected type",
        }
    }
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    pub fn new(config: &Config) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[config.auth.jwt_issuer.as_str()]);
        validation.set_audience(&[config.auth.jwt_audience.as_str()]);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(config.auth.jwt_secret.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(config.auth.jwt_secret.expose_secret().as_bytes()),
            validation,
            issuer: config.auth.jwt_issuer.clone(),
            audience: config.auth.jwt_audience.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        typ: &str,
        user_id: i64,
        role: Option<Role>,
        jti: &str,
        sid: &str,
        now: DateTime<Utc>,
        ttl_seconds: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id.to_string(),
            jti: jti.to_string(),
            typ: typ.to_string(),
            sid: sid.to_string(),
            role,
            iat: now.timestamp(),
            exp: now.timestamp() + ttl_seconds,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies signature, issuer, audience, type and expiry (against `now`).
    pub fn verify(
        &self,
        token: &str,
        typ: &str,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenProblem> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenProblem::Invalid)?;
        let claims = data.claims;
        if claims.typ != typ {
            return Err(TokenProblem::WrongType);
        }
        if claims.exp <= now.timestamp() {
            return Err(TokenProblem::Expired);
        }
        if claims.user_id().is_none() {
            return Err(TokenProblem::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sign_verify_expiry_and_type() {
        let cfg = Config::from_map(&HashMap::new()).unwrap();
        let keys = TokenKeys::new(&cfg);
        let now = Utc::now();
        let t = keys
            .sign(ACCESS, 7, Some(Role::Admin), "j1", "s1", now, 60)
            .unwrap();
        let c = keys.verify(&t, ACCESS, now).unwrap();
        assert_eq!(c.user_id(), Some(7));
        assert_eq!(c.role, Some(Role::Admin));
        assert_eq!(
            keys.verify(&t, REFRESH, now).unwrap_err(),
            TokenProblem::WrongType
        );
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(
            keys.verify(&t, ACCESS, later).unwrap_err(),
            TokenProblem::Expired
        );
        let mut tampered = t.clone();
        tampered.push('x');
        assert_eq!(
            keys.verify(&tampered, ACCESS, now).unwrap_err(),
            TokenProblem::Invalid
        );
    }
}
