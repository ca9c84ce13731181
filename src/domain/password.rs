use super::Invalid;

/// Password length bounds, in characters.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// A plaintext password that meets the policy: 8–128 characters with at least one letter and one digit.
/// Never logged, never stored: only its argon2id hash is.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::parse_field("password", raw)
    }

    pub fn parse_field(field: &str, raw: &str) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if len < PASSWORD_MIN {
            return Err(Invalid::new(
                field,
                "too_short",
                "Password must be at least 8 characters",
            ));
        }
        if len > PASSWORD_MAX {
            return Err(Invalid::new(
                field,
                "too_long",
                "Password must be at most 128 characters",
            ));
        }
        if !raw.chars().any(char::is_alphabetic) || !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err(Invalid::new(
                field,
                "too_weak",
                "Password must contain at least one letter and one digit",
            ));
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(Password::parse("abc12345").is_ok());
        assert_eq!(
            Password::parse("abc1234").unwrap_err().details[0].issue,
            "too_short"
        );
        assert_eq!(
            Password::parse("abcdefgh").unwrap_err().details[0].issue,
            "too_weak"
        );
        assert_eq!(
            Password::parse("12345678").unwrap_err().details[0].issue,
            "too_weak"
        );
        assert!(format!("{:?}", Password::parse("abc12345").unwrap()).contains("***"));
    }
}
