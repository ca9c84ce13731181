use email_address::{EmailAddress, Options};

use super::Invalid;

/// Longest email address (RFC 5321 path limit), in bytes.
pub const EMAIL_MAX: usize = 254;

/// An email address: a bare `local@domain`, trimmed and stored lower-case (uniqueness is
/// case-insensitive). Refused: a display name or angle brackets (`"Ana" <ana@x.cl>` would send
/// to one mailbox while showing another), comments, quoted local parts, IP-literal domains
/// (`ana@[10.0.0.1]`: no shop customer has one, and they route around the domain's mail policy),
/// a domain without a dot, and anything longer than 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(Invalid::new("email", "required", "Email is required"));
        }
        if let Some(problem) = problem(&s) {
            return Err(Invalid::new(
                "email",
                "invalid_format",
                format!("Email must be a bare address such as ana@example.cl: {problem}"),
            ));
        }
        Ok(Email(s))
    }

    /// Why `s` (already trimmed and lower-cased) is not a bare address, if it is not.
    pub fn problem(s: &str) -> Option<&'static str> {
        problem(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

fn problem(s: &str) -> Option<&'static str> {
    if s.len() > EMAIL_MAX {
        return Some("longer than 254 characters");
    }
    if s.contains(['<', '>']) {
        return Some("no display name or angle brackets");
    }
    if s.contains(['"', '(', ')']) || s.chars().any(char::is_whitespace) {
        return Some("no quotes, comments or spaces");
    }
    let strict = Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_required_tld();
    match EmailAddress::parse_with_options(s, strict) {
        Ok(_) => None,
        Err(email_address::Error::UnsupportedDomainLiteral) => Some("no IP-literal domains"),
        Err(_) => Some("not a valid address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_validates_a_bare_address() {
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
            "\"victim@shop.cl\" <evil@example.com>",
            "Victim <evil@example.com>",
            "<evil@example.com>",
            "\"a b\"@example.cl",
            "\"ab\"@example.cl",
            "ana(comment)@example.cl",
            "ana@[127.0.0.1]",
            "ana@[ipv6:::1]",
            "ana@@example.cl",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "ana.perez+tienda@example.cl",
            "o'hara@sub.example.co.uk",
            "x_1@a-b.cl",
        ] {
            assert_eq!(Email::parse(good).unwrap().as_str(), good);
        }
    }
}
