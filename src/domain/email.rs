use super::Invalid;

/// Longest email address (RFC 5321 path limit), in bytes.
pub const EMAIL_MAX: usize = 254;

/// An email address, trimmed and stored lower-case (uniqueness is case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(Invalid::new("email", "required", "Email is required"));
        }
        if s.len() > EMAIL_MAX || !email_address::EmailAddress::is_valid(&s) || !s.contains('.') {
            return Err(Invalid::new(
                "email",
                "invalid_format",
                "Email is not a valid address",
            ));
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_validates() {
        assert_eq!(
            Email::parse(" Ana@Example.CL ").unwrap().as_str(),
            "ana@example.cl"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.cl",
            "ana@example",
            "a b@example.cl",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
