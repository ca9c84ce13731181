//! Validated domain values. Each `parse` returns a `validation_error` naming the field and the issue.

mod email;
mod password;
mod region;
mod rut;

pub use email::{Email, EMAIL_MAX};
pub use password::{Password, PASSWORD_MAX, PASSWORD_MIN};
pub use region::{parse_region, REGIONS};
pub use rut::Rut;

use crate::error::AppError;

/// Longest display name, in characters (after trimming).
pub const NAME_MAX: usize = 120;
/// A phone number's digit count range.
pub const PHONE_DIGITS: (usize, usize) = (8, 15);

/// A person's display name: trimmed, 1–120 characters, no control characters.
pub fn parse_name(field: &str, raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::invalid(field, "required", "Name is required"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(AppError::invalid(
            field,
            "too_long",
            "Name must be at most 120 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "invalid_format",
            "Name contains control characters",
        ));
    }
    Ok(name.to_string())
}

/// A phone number: digits with an optional leading `+`, spaces allowed, 8–15 digits.
pub fn parse_phone(field: &str, raw: &str) -> Result<String, AppError> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if digits.len() < PHONE_DIGITS.0
        || digits.len() > PHONE_DIGITS.1
        || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(AppError::invalid(
            field,
            "invalid_format",
            "Phone must have 8 to 15 digits, optionally starting with +",
        ));
    }
    Ok(compact)
}
