//! Validated domain values. Each `parse` returns an [`Invalid`] naming the field and the issue
//! (a `validation_error` at the edge). The domain imports nothing else from the crate.

mod email;
mod invalid;
mod password;
mod region;
mod rut;
mod scope;
mod text;
mod timestamp;

pub use email::{Email, EMAIL_MAX};
pub use invalid::{FieldIssue, Invalid};
pub use password::{Password, PASSWORD_MAX, PASSWORD_MIN};
pub use region::{parse_region, REGIONS};
pub use rut::Rut;
pub use scope::Scope;
pub use text::{
    check_text, check_tree, control_character, fold, forbidden_control, is_forbidden_control,
    parse_text, Shape, Shaped,
};
pub use timestamp::Timestamp;

/// Longest display name, in characters (after trimming).
pub const NAME_MAX: usize = 120;
/// A phone number's digit count range.
pub const PHONE_DIGITS: (usize, usize) = (8, 15);

/// A person's display name: trimmed, 1–120 characters, no control characters.
pub fn parse_name(field: &str, raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Invalid::new(field, "required", "Name is required"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(Invalid::new(
            field,
            "too_long",
            "Name must be at most 120 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            "invalid_format",
            "Name contains control characters",
        ));
    }
    Ok(name.to_string())
}

/// A phone number: digits with an optional leading `+`, spaces allowed, 8–15 digits.
pub fn parse_phone(field: &str, raw: &str) -> Result<String, Invalid> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if digits.len() < PHONE_DIGITS.0
        || digits.len() > PHONE_DIGITS.1
        || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(Invalid::new(
            field,
            "invalid_format",
            "Phone must have 8 to 15 digits, optionally starting with +",
        ));
    }
    Ok(compact)
}
