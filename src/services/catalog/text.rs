//! Validation and normalisation of catalogue text: slugs, SKUs, names, search folding.

pub use crate::domain::parse_text;
use crate::error::AppError;

pub use crate::domain::fold;

pub fn search_text(name: &str, description: &str) -> String {
    fold(&format!("{name}\n{description}"))
}

/// Longest slug, SKU, description and image URL (bytes for slugs, SKUs and URLs; characters for
/// descriptions). The OpenAPI document states the same constants.
pub const SLUG_MAX: usize = 80;
pub const SKU_MAX: usize = 64;
pub const DESCRIPTION_MAX: usize = 5000;
pub const IMAGE_URL_MAX: usize = 500;

/// `Semillas Autoflorecientes!` → `semillas-autoflorecientes`.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in fold(s).chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out.truncate(SLUG_MAX);
    out
}

pub fn parse_slug(field: &str, raw: &str) -> Result<String, AppError> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= SLUG_MAX
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !ok {
        return Err(AppError::invalid(
            field,
            "invalid_format",
            "A slug is lower-case letters and digits separated by single hyphens",
        ));
    }
    Ok(s.to_string())
}

pub fn parse_sku(field: &str, raw: &str) -> Result<String, AppError> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= SKU_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(AppError::invalid(
            field,
            "invalid_format",
            "A SKU is 1–64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(s.to_string())
}

pub fn parse_description(field: &str, raw: Option<&str>) -> Result<String, AppError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(String::new()),
        Some(s) => Ok(parse_text(field, s, DESCRIPTION_MAX)?),
    }
}

/// An image URL: absolute http(s), or a path served by this app (`/uploads/...`).
pub fn parse_image_url(field: &str, raw: &str) -> Result<String, AppError> {
    let s = raw.trim();
    let ok = s.len() <= IMAGE_URL_MAX
        && (s.starts_with("https://") || s.starts_with("http://") || s.starts_with("/uploads/"))
        && !s.contains(char::is_whitespace)
        // No IPv6-literal hosts or backslashes (which browsers read as slashes).
        && !s.contains(['[', ']', '\\'])
        && !s.contains("..");
    if !ok {
        return Err(AppError::invalid(
            field,
            "invalid_format",
            "imageUrl must be an http(s) URL or an /uploads/ path, without spaces, brackets, backslashes or '..'",
        ));
    }
    Ok(s.to_string())
}

pub fn non_negative(field: &str, v: i64, max: i64) -> Result<i64, AppError> {
    if v < 0 {
        return Err(AppError::invalid(
            field,
            "negative",
            format!("{field} must be zero or more"),
        ));
    }
    if v > max {
        return Err(AppError::invalid(
            field,
            "out_of_range",
            format!("{field} must be at most {max}"),
        ));
    }
    Ok(v)
}

/// The name, slug and description an update changes: each validated when sent, its problems
/// recorded in `issues`.
pub struct Naming {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
}

impl Naming {
    pub fn parse(
        issues: &mut crate::error::Issues,
        name: Option<&str>,
        name_max: usize,
        slug: Option<&str>,
        description: Option<&str>,
    ) -> Self {
        Naming {
            name: name.and_then(|n| issues.take(parse_text("name", n, name_max))),
            slug: slug.and_then(|s| issues.take(parse_slug("slug", s))),
            description: description
                .and_then(|d| issues.take(parse_description("description", Some(d)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_slugs() {
        assert_eq!(fold("Índica AÑEJA"), "indica aneja");
        assert_eq!(
            slugify("  Semillas Autoflorecientes! (x3) "),
            "semillas-autoflorecientes-x3"
        );
        assert!(parse_slug("slug", "semillas-auto").is_ok());
        for bad in ["", "Semillas", "a--b", "-a", "a_b", "ñ"] {
            assert!(parse_slug("slug", bad).is_err(), "{bad}");
        }
        assert!(parse_sku("sku", "SEM-AUTO-1G").is_ok());
        assert!(parse_sku("sku", "bad sku").is_err());
        assert!(parse_image_url("imageUrl", "/uploads/ab.png").is_ok());
        assert!(parse_image_url("imageUrl", "javascript:alert(1)").is_err());
        assert!(parse_image_url("imageUrl", "/uploads/../etc/passwd").is_err());
        assert!(parse_image_url("imageUrl", "http://[").is_err());
        assert!(parse_image_url("imageUrl", "https://cdn.example.cl\\evil").is_err());
    }
}
