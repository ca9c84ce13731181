//! What an API key may do: its scopes, named as clients send them (`orders:read`).

use super::Invalid;

/// One permission an API key may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    ProductsRead,
    ProductsWrite,
    OrdersRead,
    /// Status and tracking changes.
    OrdersWrite,
    CustomersRead,
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::ProductsRead,
        Scope::ProductsWrite,
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::CustomersRead,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ProductsRead => "products:read",
            Scope::ProductsWrite => "products:write",
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::CustomersRead => "customers:read",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// A key's scopes as given: at least one, each known, without repeats; answered sorted.
    pub fn parse_list(field: &str, names: &[String]) -> Result<Vec<Scope>, Invalid> {
        if names.is_empty() {
            return Err(Invalid::new(
                field,
                "required",
                "Give the key at least one scope",
            ));
        }
        let mut scopes = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let Some(scope) = Scope::from_name(name.trim()) else {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                return Err(Invalid::new(
                    &format!("{field}[{i}]"),
                    "unknown_scope",
                    format!("Unknown scope; the scopes are {}", known.join(", ")),
                ));
            };
            if scopes.contains(&scope) {
                return Err(Invalid::new(
                    &format!("{field}[{i}]"),
                    "duplicate",
                    format!("The scope {} is given twice", scope.as_str()),
                ));
            }
            scopes.push(scope);
        }
        scopes.sort();
        Ok(scopes)
    }

    /// Scopes as stored: space-separated names. Unknown names (from a later version) are skipped.
    pub fn from_stored(stored: &str) -> Vec<Scope> {
        stored
            .split_whitespace()
            .filter_map(Scope::from_name)
            .collect()
    }

    pub fn to_stored(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_sorted_and_refuse_unknown_or_repeated_names() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = Scope::parse_list("scopes", &names(&["orders:read", "products:read"])).unwrap();
        assert_eq!(ok, vec![Scope::ProductsRead, Scope::OrdersRead]);
        assert_eq!(Scope::to_stored(&ok), "products:read orders:read");
        assert_eq!(Scope::from_stored("products:read orders:read"), ok);
        let e = Scope::parse_list("scopes", &names(&["orders:read", "orders:delete"])).unwrap_err();
        assert_eq!(e.details[0].field, "scopes[1]");
        assert_eq!(e.details[0].issue, "unknown_scope");
        let e = Scope::parse_list("scopes", &names(&["orders:read", "orders:read"])).unwrap_err();
        assert_eq!(e.details[0].issue, "duplicate");
        assert!(Scope::parse_list("scopes", &[]).is_err());
    }
}
