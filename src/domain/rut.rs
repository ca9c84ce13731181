use super::Invalid;

/// A Chilean RUT that passed the modulo-11 check, normalised to `<body>-<dv>` (no dots, upper-case `K`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rut(String);

impl Rut {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("rut", "invalid_rut", "RUT is not valid");
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect::<String>()
            .to_uppercase();
        // Only ASCII can be valid, and the byte split below needs it.
        if compact.len() < 2 || !compact.is_ascii() {
            return Err(invalid());
        }
        let (body, dv) = compact.split_at(compact.len() - 1);
        if body.is_empty() || body.len() > 8 || !body.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let body = body.trim_start_matches('0');
        if body.is_empty() {
            return Err(invalid());
        }
        if check_digit(body) != dv.chars().next().unwrap_or(' ') {
            return Err(invalid());
        }
        Ok(Rut(format!("{body}-{dv}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Modulo 11 with the weights 2..=7 applied from the rightmost digit.
fn check_digit(body: &str) -> char {
    let sum: u32 = body
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .zip([2u32, 3, 4, 5, 6, 7].into_iter().cycle())
        .map(|(d, w)| d * w)
        .sum();
    match 11 - (sum % 11) {
        11 => '0',
        10 => 'K',
        r => char::from_digit(r, 10).unwrap_or('?'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ruts_normalise() {
        for (raw, norm) in [
            ("11.111.111-1", "11111111-1"),
            ("12.345.678-5", "12345678-5"),
            ("76.086.428-5", "76086428-5"),
            ("12.531.909-2", "12531909-2"),
            ("10.000.013-K", "10000013-K"),
            ("10.000.013-k", "10000013-K"),
            ("10.000.004-0", "10000004-0"),
            ("1-9", "1-9"),
            (" 123456785 ", "12345678-5"),
        ] {
            assert_eq!(Rut::parse(raw).unwrap().as_str(), norm, "{raw}");
        }
    }

    #[test]
    fn invalid_ruts_are_refused() {
        for raw in [
            "12.531.909-3",
            "12.345.678-K",
            "abc",
            "",
            "-",
            "123456789-0",
            "0-0",
            "\u{84}",
            "1234567\u{e9}",
            "12.345.678-\u{c9}",
        ] {
            let e = Rut::parse(raw).unwrap_err();
            assert_eq!(e.details[0].field, "rut");
            assert_eq!(e.details[0].issue, "invalid_rut");
        }
    }
}
