//! Chile's 16 regions. Accepts the official name (with or without "Región de/del"), common short
//! names and the Roman-numeral codes; stores the canonical short name.

use super::fold;
use super::Invalid;

/// (canonical name, code, other accepted spellings)
pub const REGIONS: &[(&str, &str, &[&str])] = &[
    ("Arica y Parinacota", "XV", &[]),
    ("Tarapacá", "I", &[]),
    ("Antofagasta", "II", &[]),
    ("Atacama", "III", &[]),
    ("Coquimbo", "IV", &[]),
    ("Valparaíso", "V", &[]),
    (
        "Metropolitana",
        "RM",
        &[
            "XIII",
            "Metropolitana de Santiago",
            "Santiago",
            "Región Metropolitana",
        ],
    ),
    (
        "O'Higgins",
        "VI",
        &[
            "Libertador General Bernardo O'Higgins",
            "Libertador Bernardo O'Higgins",
            "OHiggins",
        ],
    ),
    ("Maule", "VII", &["Del Maule"]),
    ("Ñuble", "XVI", &[]),
    ("Biobío", "VIII", &["Bío-Bío", "Bio Bio", "Del Biobío"]),
    ("La Araucanía", "IX", &["Araucanía"]),
    ("Los Ríos", "XIV", &[]),
    ("Los Lagos", "X", &[]),
    (
        "Aysén",
        "XI",
        &["Aysén del General Carlos Ibáñez del Campo", "Aisén"],
    ),
    (
        "Magallanes",
        "XII",
        &[
            "Magallanes y de la Antártica Chilena",
            "Magallanes y Antártica Chilena",
        ],
    ),
];

fn key(s: &str) -> String {
    let f = fold(s.trim());
    let f = f
        .strip_prefix("region de la ")
        .or_else(|| f.strip_prefix("region del "))
        .or_else(|| f.strip_prefix("region de "))
        .or_else(|| f.strip_prefix("region "))
        .unwrap_or(&f)
        .to_string();
    f.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// The canonical region name for any accepted spelling.
pub fn parse_region(field: &str, raw: &str) -> Result<String, Invalid> {
    let k = key(raw);
    if !k.is_empty() {
        for (name, code, aliases) in REGIONS {
            let code_key = code.to_ascii_lowercase();
            if k == key(name) || k == code_key || aliases.iter().any(|a| key(a) == k) {
                return Ok(name.to_string());
            }
        }
    }
    Err(Invalid::new(
        field,
        "unknown_region",
        "region must be one of Chile's 16 regions (name or code, e.g. 'Valparaíso' or 'V')",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_aliases() {
        for (raw, want) in [
            ("RM", "Metropolitana"),
            ("XIII", "Metropolitana"),
            ("Región Metropolitana de Santiago", "Metropolitana"),
            ("valparaiso", "Valparaíso"),
            ("V", "Valparaíso"),
            ("Región de Ñuble", "Ñuble"),
            ("xvi", "Ñuble"),
            ("Región del Biobío", "Biobío"),
            ("Libertador General Bernardo O'Higgins", "O'Higgins"),
            ("Magallanes y de la Antártica Chilena", "Magallanes"),
            ("Los Ríos", "Los Ríos"),
        ] {
            assert_eq!(parse_region("region", raw).unwrap(), want, "{raw}");
        }
        assert_eq!(REGIONS.len(), 16);
        for bad in ["", "Mendoza", "XVII", "Patagonia"] {
            assert!(parse_region("region", bad).is_err(), "{bad}");
        }
    }
}
