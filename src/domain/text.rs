//! Text folding shared by search and by the spellings the domain accepts, and the control
//! characters no text input may hold.

use super::Invalid;

/// Lower-case and strip the accents used in Spanish, so that `Índica` is found by `indica`.
/// Applied to both the stored search text and the query, identically on every database.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            other => other,
        })
        .collect()
}

/// Whether text input may not hold `c`: a control character (NUL, the other C0 controls, DEL and
/// the C1 controls) that is not whitespace — tab and the line breaks (LF, VT, FF, CR, NEL) pass,
/// as `str::trim` treats them as spaces. PostgreSQL text cannot hold NUL at all; the others have
/// no place in a name, an address or a review, and confuse terminals, logs and mail.
pub fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !c.is_whitespace()
}

/// The first character of `s` that text input may not hold, if any.
pub fn forbidden_control(s: &str) -> Option<char> {
    s.chars().find(|&c| is_forbidden_control(c))
}

/// `field` holding the control character `c`, refused (`control_character`).
pub fn control_character(field: &str, c: char) -> Invalid {
    Invalid::new(
        field,
        "control_character",
        format!(
            "'{field}' contains the control character U+{:04X}; text may hold no control characters but tab and line breaks",
            c as u32
        ),
    )
}

/// Free text: trimmed, non-empty, at most `max` characters, no control characters but line
/// feed and tab.
pub fn parse_text(field: &str, raw: &str, max: usize) -> Result<String, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Invalid::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    if s.chars().count() > max {
        return Err(Invalid::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid::new(
            field,
            "invalid_format",
            format!("{field} contains control characters"),
        ));
    }
    Ok(s.to_string())
}

/// `s`, refused as `field`'s when it holds a control character text may not hold.
pub fn check_text(field: &str, s: &str) -> Result<(), Invalid> {
    forbidden_control(s).map_or(Ok(()), |c| Err(control_character(field, c)))
}

/// A structured value (JSON, GraphQL) as [`check_tree`] sees it.
pub enum Shape<'a, T> {
    Text(&'a str),
    List(&'a [T]),
    Object(Vec<(&'a str, &'a T)>),
    Other,
}

/// A value [`check_tree`] can walk.
pub trait Shaped: Sized {
    fn shape(&self) -> Shape<'_, Self>;
}

impl Shaped for serde_json::Value {
    fn shape(&self) -> Shape<'_, Self> {
        match self {
            serde_json::Value::String(s) => Shape::Text(s),
            serde_json::Value::Array(items) => Shape::List(items),
            serde_json::Value::Object(fields) => {
                Shape::Object(fields.iter().map(|(k, v)| (k.as_str(), v)).collect())
            }
            _ => Shape::Other,
        }
    }
}

/// Checks every text (and object key) in `value`, named `path`: `items[0].name` inside lists and
/// objects. `top` marks a whole argument, variable or body, whose object fields are named alone
/// (`email`, not `input.email`), as the request spells them.
pub fn check_tree<T: Shaped>(path: &str, value: &T, top: bool) -> Result<(), Invalid> {
    match value.shape() {
        Shape::Text(s) => check_text(path, s),
        Shape::List(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_tree(&format!("{path}[{i}]"), item, false)),
        Shape::Object(fields) => fields.into_iter().try_for_each(|(key, item)| {
            let child = if top {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            check_text(&child, key)?;
            check_tree(&child, item, false)
        }),
        Shape::Other => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_other_than_tab_and_line_breaks_are_forbidden() {
        for bad in [
            "a\0b",
            "\u{7}",
            "x\u{1b}[31m",
            "\u{1c}",
            "\u{7f}",
            "\u{84}",
            "\u{9f}",
        ] {
            assert!(forbidden_control(bad).is_some(), "{bad:?}");
        }
        for good in [
            "",
            "Índica ñ",
            "line\nbreak\r\n",
            "tab\there",
            "emoji 🌿",
            "\u{a0}",
        ] {
            assert_eq!(forbidden_control(good), None, "{good:?}");
        }
        assert_eq!(forbidden_control("a\0b"), Some('\0'));
        let refused = check_text("q", "a\0b").unwrap_err();
        assert!(refused.message.contains("U+0000"), "{}", refused.message);
        assert_eq!(refused.details[0].issue, "control_character");
    }

    #[test]
    fn a_tree_names_the_field_as_the_request_spells_it() {
        let field = |v: serde_json::Value| {
            check_tree("body", &v, true)
                .err()
                .map(|e| e.details[0].field.clone())
        };
        assert_eq!(
            field(serde_json::json!({"email": "a\u{0}"})),
            Some("email".into())
        );
        assert_eq!(
            field(serde_json::json!({"items": [{"n": "ok"}, {"n": "\u{7}"}]})),
            Some("items[1].n".into())
        );
        assert_eq!(
            field(serde_json::json!({"a\u{0}": 1})),
            Some("a\u{0}".into())
        );
        assert_eq!(field(serde_json::json!("\u{0}")), Some("body".into()));
        assert_eq!(field(serde_json::json!({"ok": ["a\nb", 1, null]})), None);
    }
}
