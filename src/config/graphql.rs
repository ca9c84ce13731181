//! The GraphQL section: the limits every document meets, introspection, persisted queries.

use super::reader::Reader;
use super::ConfigError;

/// Who may run GraphQL introspection (`__schema`, `__type`); `__typename` is always allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    Public,
    /// Admins keep a working GraphiQL; everyone else is refused.
    Admin,
    Off,
}

#[derive(Debug, Clone)]
pub struct GraphqlConfig {
    /// `GRAPHQL_MAX_DEPTH` (default 12).
    pub max_depth: usize,
    /// `GRAPHQL_MAX_COMPLEXITY` (default 25,000).
    pub max_complexity: usize,
    /// Aliased fields one document may hold, fragments counted where they are spread
    /// (`GRAPHQL_MAX_ALIASES`, default 30).
    pub max_aliases: usize,
    /// `GRAPHQL_INTROSPECTION` (`public`, `admin` — the default in production — or `off`).
    pub introspection: Introspection,
    /// The bound of the automatic persisted queries store, in bytes of query text.
    pub persisted_queries_max_bytes: u64,
}

impl GraphqlConfig {
    pub(super) fn parse(r: &Reader<'_>, production: bool) -> Result<Self, ConfigError> {
        Ok(GraphqlConfig {
            max_depth: r.positive("GRAPHQL_MAX_DEPTH", 12)? as usize,
            max_complexity: r.positive("GRAPHQL_MAX_COMPLEXITY", 25_000)? as usize,
            max_aliases: r.positive("GRAPHQL_MAX_ALIASES", 30)? as usize,
            introspection: r.one_of(
                "GRAPHQL_INTROSPECTION",
                if production {
                    Introspection::Admin
                } else {
                    Introspection::Public
                },
                &[
                    ("public", Introspection::Public),
                    ("admin", Introspection::Admin),
                    ("off", Introspection::Off),
                ],
            )?,
            persisted_queries_max_bytes: r
                .positive("PERSISTED_QUERIES_MAX_BYTES", 4 * 1024 * 1024)?
                as u64,
        })
    }
}
