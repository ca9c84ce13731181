//! What a GraphQL document may cost and how it may be shaped, decided before anything executes.
//!
//! **Cost.** async-graphql adds up one point per selected field; every list field declares
//! `#[graphql(complexity = ...)]` with [`paged`], [`sized`], [`list`] or [`fanout`], so a list costs
//! `1 + size × (cost of its selection)` where the size is the one requested (`pageSize`, `limit`,
//! `days`, their defaults when absent) or, for lists without a size argument, an assumed fan-out.
//! async-graphql's own check refuses a document above `GRAPHQL_MAX_COMPLEXITY`, and
//! [`explain_cost`] turns its bare refusal into one that says the cost. (Not an extension: with any
//! extension registered, async-graphql puts every field's resolution through the extension chain —
//! two registry lookups and a boxed future per field, ~8 % of an uncached catalogue page's CPU.)
//!
//! **Shape.** [`admit`] walks the parsed document once, fragments expanded where they are spread:
//! it refuses introspection to callers `GRAPHQL_INTROSPECTION` excludes (first: authorization comes
//! before validation), then too many aliases (`GRAPHQL_MAX_ALIASES`) and too deep a selection.
//! Depth is counted here rather than by async-graphql because introspection is deep but cheap:
//! the standard introspection query nests `ofType` 7 to 9 times (13 to 15 levels), which no
//! ordinary query needs. So ordinary selections count against `GRAPHQL_MAX_DEPTH`, and the subtree
//! under `__schema`/`__type` against its own [`INTROSPECTION_MAX_DEPTH`] plus graphql-js's
//! `MaxIntrospectionDepthRule` (a third nested `fields`/`interfaces`/`possibleTypes`/`inputFields`
//! is refused), which is what bounds introspection's fan-out: `ofType` is a single object, so
//! depth alone costs only linearly.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, ServerError, ValidationResult};

use crate::actor::RequestCtx;
use crate::config::{Config, Introspection};
use crate::error::{AppError, ErrorCode, FieldIssue};
use crate::services::platform::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Assumed length of a list that has no size argument and is nested under another object: a
/// product's variants, an order's or a cart's lines, a checkout's lines, shipping methods, import
/// issues. Real ones are shorter (the demo catalogue has 1–3 variants per product).
pub const NESTED_LIST_FANOUT: usize = 10;

/// Assumed length of a top-level list that has no size argument (`lowStock`): a full page.
pub const UNPAGINATED_LIST_SIZE: usize = MAX_PAGE_SIZE as usize;

/// How deep the subtree under `__schema` or `__type` may go. graphql-js 16's standard query is 15
/// levels deep (`__schema types fields args type` and 9 × `ofType` + a leaf); 20 leaves room for
/// tools that nest `ofType` a little further.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// graphql-js's `MaxIntrospectionDepthRule`: this many nested introspection lists is refused.
const INTROSPECTION_LIST_NESTING: usize = 3;
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];

/// Fragment spreads nested deeper than async-graphql's own recursion limit (32) are left for it
/// to refuse; stopping there also keeps this walk's recursion shallow.
const SPREAD_NESTING_LIMIT: usize = 32;

/// No single field's cost exceeds this, so async-graphql's unchecked sums cannot overflow (the
/// walk refuses documents with more fields than `GRAPHQL_MAX_COMPLEXITY` ≤ `u32::MAX` first).
const COST_CAP: usize = u32::MAX as usize;

/// The cost of a list of `size` items whose selection costs `child` each.
pub fn list(size: usize, child: usize) -> usize {
    size.saturating_mul(child).saturating_add(1).min(COST_CAP)
}

/// A list whose size the caller requests, within `1..=max`, `default` when absent. Out-of-range
/// requests cost as the nearest legal size: the resolver refuses them with a precise error.
pub fn sized(requested: Option<i64>, default: i64, max: i64, child: usize) -> usize {
    let size = requested.unwrap_or(default).clamp(1, max.max(1));
    list(size as usize, child)
}

/// A page: `pageSize` items (default 20, at most 100).
pub fn paged(page_size: Option<i64>, child: usize) -> usize {
    sized(
        page_size,
        DEFAULT_PAGE_SIZE as i64,
        MAX_PAGE_SIZE as i64,
        child,
    )
}

/// `ordersByStatus` lists every status once.
pub fn order_statuses() -> usize {
    use sea_orm::Iterable;
    crate::entities::order::OrderStatus::iter().count()
}

/// A nested list without a size argument.
pub fn fanout(child: usize) -> usize {
    list(NESTED_LIST_FANOUT, child)
}

/// async-graphql's refusal of a document above the cost limit (its message, verbatim).
const TOO_COMPLEX: &str = "Query is too complex.";

/// Whether `errors` is async-graphql's bare cost refusal, which [`explain_cost`] replaces.
pub fn is_cost_refusal(errors: &[ServerError]) -> bool {
    matches!(errors, [e] if e.message == TOO_COMPLEX && e.extensions.is_none())
}

/// The errors that replace async-graphql's bare cost refusal of `query`: the document's own
/// validation errors when it has any (async-graphql checks the cost first; clients fix those
/// first), else a refusal that says the cost and the limit.
pub async fn explain_cost(
    query: &str,
    variables: async_graphql::Variables,
    operation_name: Option<String>,
    limit: usize,
) -> Vec<ServerError> {
    match measure_operation(query, variables, operation_name).await {
        Ok(m) => vec![to_server_error(&too_complex(
            format!("its cost is {}", m.complexity),
            limit,
        ))],
        Err(errors) => errors,
    }
}

fn too_complex(cost: String, limit: usize) -> AppError {
    AppError::invalid(
        "query",
        "too_complex",
        format!(
            "Query is too complex: {cost}, the limit is {limit} (GRAPHQL_MAX_COMPLEXITY). \
             A list costs its requested size (pageSize, limit, days) times its selection."
        ),
    )
}

fn to_server_error(e: &AppError) -> ServerError {
    let mut err = ServerError::new(e.message.clone(), None);
    err.extensions = e.extend().extensions;
    err
}

/// What the walk found in a document (fragments counted where they are spread).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Field selections, `__typename` included.
    pub fields: usize,
    pub aliases: usize,
    /// The deepest ordinary selection (a leaf field counts as a level).
    pub depth: usize,
    /// The deepest selection under `__schema` or `__type` (the introspection field is level 1).
    pub introspection_depth: usize,
    pub introspects: bool,
}

/// The bounds one walk enforces.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_depth: usize,
    pub max_aliases: usize,
    /// Every field costs at least one point, so more fields than the cost limit is over it.
    pub max_fields: usize,
}

impl Bounds {
    pub fn of(config: &Config) -> Self {
        Bounds {
            max_depth: config.graphql.max_depth,
            max_aliases: config.graphql.max_aliases,
            max_fields: config.graphql.max_complexity,
        }
    }

    /// No bounds: for measuring.
    pub fn none() -> Self {
        Bounds {
            max_depth: usize::MAX,
            max_aliases: usize::MAX,
            max_fields: usize::MAX,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    TooManyAliases(usize),
    TooDeep(usize),
    IntrospectionTooDeep,
    IntrospectionListsTooDeep,
    TooManyFields(usize),
}

impl Violation {
    pub fn to_error(self) -> AppError {
        let (issue, message) = match self {
            Violation::TooManyAliases(n) => (
                "too_many_aliases",
                format!("Query has too many aliases: the limit is {n} (GRAPHQL_MAX_ALIASES)"),
            ),
            Violation::TooDeep(n) => (
                "too_deep",
                format!("Query is nested too deep: the limit is {n} levels (GRAPHQL_MAX_DEPTH)"),
            ),
            Violation::IntrospectionTooDeep => (
                "too_deep",
                format!(
                    "Introspection is nested too deep: the limit is {INTROSPECTION_MAX_DEPTH} levels under __schema or __type"
                ),
            ),
            Violation::IntrospectionListsTooDeep => (
                "too_deep",
                "Maximum introspection depth exceeded: fields, interfaces, possibleTypes and \
                 inputFields may nest at most 2 deep"
                    .to_string(),
            ),
            Violation::TooManyFields(n) => {
                return too_complex(format!("it selects more than {n} fields"), n)
            }
        };
        AppError::invalid("query", issue, message)
    }
}

/// Walks every operation of `doc`, fragments expanded, and stops at the first bound crossed.
pub fn inspect(doc: &ExecutableDocument, bounds: Bounds) -> Result<Shape, Violation> {
    let mut walk = Walk {
        doc,
        bounds,
        shape: Shape::default(),
        spreads: Vec::new(),
    };
    for (_, op) in doc.operations.iter() {
        walk.selection_set(&op.node.selection_set.node, At::ROOT)?;
    }
    Ok(walk.shape)
}

/// True when the document selects `__schema` or `__type` (only possible at an operation's root).
pub fn introspects(doc: &ExecutableDocument) -> bool {
    fn root(doc: &ExecutableDocument, set: &SelectionSet, spreads: &mut Vec<String>) -> bool {
        set.items.iter().any(|sel| match &sel.node {
            Selection::Field(f) => is_introspection(&f.node),
            Selection::InlineFragment(fr) => root(doc, &fr.node.selection_set.node, spreads),
            Selection::FragmentSpread(sp) => {
                let name = sp.node.fragment_name.node.to_string();
                if spreads.contains(&name) || spreads.len() >= SPREAD_NESTING_LIMIT {
                    return false;
                }
                let Some(def) = doc.fragments.get(&sp.node.fragment_name.node) else {
                    return false;
                };
                spreads.push(name);
                let found = root(doc, &def.node.selection_set.node, spreads);
                spreads.pop();
                found
            }
        })
    }
    doc.operations
        .iter()
        .any(|(_, op)| root(doc, &op.node.selection_set.node, &mut Vec::new()))
}

fn is_introspection(f: &Field) -> bool {
    matches!(f.name.node.as_str(), "__schema" | "__type")
}

#[derive(Debug, Clone, Copy)]
struct At {
    depth: usize,
    root: bool,
    /// Inside `__schema`/`__type`: the depth there and the nested introspection lists.
    introspection: Option<(usize, usize)>,
}

impl At {
    const ROOT: At = At {
        depth: 0,
        root: true,
        introspection: None,
    };
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    bounds: Bounds,
    shape: Shape,
    /// The fragments being expanded, innermost last.
    spreads: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, at: At) -> Result<(), Violation> {
        for sel in &set.items {
            match &sel.node {
                Selection::Field(f) => self.field(&f.node, at)?,
                Selection::InlineFragment(fr) => {
                    self.selection_set(&fr.node.selection_set.node, at)?
                }
                Selection::FragmentSpread(sp) => {
                    let name = sp.node.fragment_name.node.as_str();
                    // Cycles, runaway chains and unknown fragments: async-graphql refuses them.
                    if self.spreads.contains(&name) || self.spreads.len() >= SPREAD_NESTING_LIMIT {
                        continue;
                    }
                    let Some(def) = self.doc.fragments.get(&sp.node.fragment_name.node) else {
                        continue;
                    };
                    self.spreads.push(name);
                    let walked = self.selection_set(&def.node.selection_set.node, at);
                    self.spreads.pop();
                    walked?;
                }
            }
        }
        Ok(())
    }

    fn field(&mut self, f: &'a Field, at: At) -> Result<(), Violation> {
        let shape = &mut self.shape;
        shape.fields += 1;
        if shape.fields > self.bounds.max_fields {
            return Err(Violation::TooManyFields(self.bounds.max_fields));
        }
        if f.alias.is_some() {
            shape.aliases += 1;
            if shape.aliases > self.bounds.max_aliases {
                return Err(Violation::TooManyAliases(self.bounds.max_aliases));
            }
        }
        let name = f.name.node.as_str();
        let introspection = match at.introspection {
            Some((depth, lists)) => Some((
                depth + 1,
                lists + usize::from(INTROSPECTION_LISTS.contains(&name)),
            )),
            None if at.root && is_introspection(f) => {
                shape.introspects = true;
                Some((1, 0))
            }
            None => None,
        };
        let depth = match introspection {
            Some((depth, lists)) => {
                shape.introspection_depth = shape.introspection_depth.max(depth);
                if depth > INTROSPECTION_MAX_DEPTH {
                    return Err(Violation::IntrospectionTooDeep);
                }
                if lists >= INTROSPECTION_LIST_NESTING {
                    return Err(Violation::IntrospectionListsTooDeep);
                }
                at.depth
            }
            None => {
                let depth = at.depth + 1;
                shape.depth = shape.depth.max(depth);
                if depth > self.bounds.max_depth {
                    return Err(Violation::TooDeep(self.bounds.max_depth));
                }
                depth
            }
        };
        self.selection_set(
            &f.selection_set.node,
            At {
                depth,
                root: false,
                introspection,
            },
        )
    }
}

/// Decides, before execution, whether a request may run: introspection per
/// `GRAPHQL_INTROSPECTION` and the caller, an API key's scopes (`scopes::admit_key`), then
/// aliases and depth. Turns introspection off in
/// the request itself for callers who may not introspect, so nothing this walk misses can reach it.
pub fn admit(
    request: async_graphql::Request,
    config: &Config,
    rctx: &RequestCtx,
) -> (async_graphql::Request, Result<(), AppError>) {
    let allowed = match config.graphql.introspection {
        Introspection::Public => true,
        Introspection::Admin => rctx.is_admin(),
        Introspection::Off => false,
    };
    let mut request = if allowed {
        request
    } else {
        request.disable_introspection()
    };
    // A document that does not parse is refused by execution, in async-graphql's words.
    let Ok(doc) = request.parsed_query() else {
        return (request, Ok(()));
    };
    if let Some(key) = rctx.api_key() {
        if let Err(refusal) = super::scopes::admit_key(doc, key) {
            return (request, Err(refusal));
        }
    }
    if !allowed && introspects(doc) {
        let refusal = introspection_refused(config.graphql.introspection, rctx);
        return (request, Err(refusal));
    }
    let verdict = inspect(doc, Bounds::of(config))
        .map(|_| ())
        .map_err(Violation::to_error);
    (request, verdict)
}

fn introspection_refused(mode: Introspection, rctx: &RequestCtx) -> AppError {
    let details = vec![FieldIssue::new("query", "introspection_not_allowed")];
    let offline = "the schema is published as schema.graphql";
    match (mode, rctx.user().is_some() || rctx.api_key().is_some()) {
        (Introspection::Admin, false) => AppError::new(
            ErrorCode::Unauthorized,
            match rctx.auth_problem {
                // A token was sent but not accepted: say why, as every other 401 does.
                Some(problem) => format!(
                    "{problem}. Introspection (__schema, __type) is for administrators ({offline})"
                ),
                None => format!(
                    "Introspection (__schema, __type) is for administrators: send an admin's bearer token ({offline})"
                ),
            },
        ),
        (Introspection::Admin, true) => AppError::new(
            ErrorCode::Forbidden,
            format!("Introspection (__schema, __type) is for administrators ({offline})"),
        ),
        _ => AppError::new(
            ErrorCode::Forbidden,
            format!("Introspection (__schema, __type) is disabled on this server ({offline})"),
        ),
    }
    .with_details(details)
}

/// A refusal as a GraphQL response (no `data`, one error in the error model).
pub fn refused(e: &AppError) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![to_server_error(e)])
}

/// What a document costs and how it is shaped, without executing it; for measuring the queries
/// clients send against the limits (the README's table comes from here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub complexity: usize,
    pub shape: Shape,
}

/// Measures `query` with `variables` against the schema, executing nothing.
pub async fn measure(
    query: &str,
    variables: async_graphql::Variables,
) -> Result<Measure, Vec<ServerError>> {
    measure_operation(query, variables, None).await
}

async fn measure_operation(
    query: &str,
    variables: async_graphql::Variables,
    operation_name: Option<String>,
) -> Result<Measure, Vec<ServerError>> {
    let captured = Measured::default();
    let mut request = async_graphql::Request::new(query)
        .variables(variables)
        .data(captured.clone());
    if let Some(op) = operation_name {
        request = request.operation_name(op);
    }
    let shape = inspect(request.parsed_query()?, Bounds::none())
        .map_err(|v| vec![ServerError::new(v.to_error().message, None)])?;
    let response = measuring_schema().execute(request).await;
    if !response.errors.is_empty() {
        return Err(response.errors);
    }
    let complexity = captured
        .0
        .lock()
        .map_err(|_| vec![ServerError::new("measurement lock poisoned", None)])?
        .take()
        .ok_or_else(|| vec![ServerError::new("the document was not validated", None)])?;
    Ok(Measure { complexity, shape })
}

/// The schema without limits or state whose one extension records the validated cost and
/// answers without executing anything (so no resolver ever runs on it). Built once.
fn measuring_schema() -> &'static super::AppSchema {
    static SCHEMA: std::sync::OnceLock<super::AppSchema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        async_graphql::Schema::build(
            super::QueryRoot::default(),
            super::MutationRoot::default(),
            async_graphql::EmptySubscription,
        )
        .extension(Capture)
        .finish()
    })
}

/// Where one measurement's cost lands (request data of the measuring request).
#[derive(Clone, Default)]
struct Measured(Arc<std::sync::Mutex<Option<usize>>>);

struct Capture;

impl ExtensionFactory for Capture {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Capture)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Capture {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(Ok(mut slot)) = ctx.data_opt::<Measured>().map(|m| m.0.lock()) {
            *slot = Some(result.complexity);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        async_graphql::Response::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> Result<Shape, Violation> {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        inspect(
            &doc,
            Bounds {
                max_depth: 3,
                max_aliases: 2,
                max_fields: 50,
            },
        )
    }

    #[test]
    fn list_costs_multiply_and_saturate() {
        assert_eq!(paged(None, 5), 101);
        assert_eq!(paged(Some(100), 5), 501);
        assert_eq!(
            paged(Some(10_000), 5),
            501,
            "out of range costs as the maximum"
        );
        assert_eq!(paged(Some(-3), 5), 6);
        assert_eq!(fanout(3), 31);
        assert_eq!(list(usize::MAX, usize::MAX), COST_CAP);
    }

    #[test]
    fn depth_counts_fragments_where_spread_and_skips_introspection() {
        let s = shape("{ a { ...F } } fragment F on X { b { c { d } } }");
        assert_eq!(s, Err(Violation::TooDeep(3)));
        let s = shape("{ a { b { c } } }").expect("within bounds");
        assert_eq!((s.depth, s.fields), (3, 3));
        let s = shape("{ __schema { types { fields { type { ofType { ofType { name } } } } } } }")
            .expect("introspection has its own depth");
        assert_eq!(
            (s.depth, s.introspection_depth, s.introspects),
            (0, 7, true)
        );
    }

    #[test]
    fn introspection_lists_nest_at_most_twice() {
        let s = shape("{ __type(name: \"Q\") { fields { type { fields { name } } } } }");
        assert!(s.is_ok(), "{s:?}");
        let s = shape(
            "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
        );
        assert_eq!(s, Err(Violation::IntrospectionListsTooDeep));
        let q = format!(
            "{{ __schema {{ {}name{} }} }}",
            "types { ".repeat(20),
            " }".repeat(20)
        );
        assert_eq!(shape(&q), Err(Violation::IntrospectionTooDeep));
    }

    #[test]
    fn aliases_count_per_spread_and_cycles_do_not_hang() {
        let s = shape("{ ...F ...G } fragment F on Q { x: a } fragment G on Q { ...F y: b }");
        assert_eq!(s, Err(Violation::TooManyAliases(2)));
        let s = shape("{ ...F } fragment F on Q { a ...F }").expect("cycles are async-graphql's");
        assert_eq!(s.fields, 1);
        // Fragments doubling at each level would expand to 2^20 fields: the walk stops at the bound.
        let mut q = String::from("{ ...F0 }");
        for i in 0..20 {
            q.push_str(&format!(
                " fragment F{i} on Q {{ a{i}: a {{ ...F{n} }} b{i}: b {{ ...F{n} }} }}",
                n = i + 1
            ));
        }
        q.push_str(" fragment F20 on Q { c }");
        let doc = async_graphql::parser::parse_query(&q).expect("parses");
        let bounds = Bounds {
            max_depth: 100,
            max_aliases: usize::MAX,
            max_fields: 1000,
        };
        assert_eq!(inspect(&doc, bounds), Err(Violation::TooManyFields(1000)));
    }

    #[test]
    fn introspection_is_found_through_root_fragments_only() {
        let doc = |q: &str| async_graphql::parser::parse_query(q).expect("parses");
        assert!(introspects(&doc(
            "{ ... on Query { ...F } } fragment F on Query { __type(name: \"X\") { name } }"
        )));
        assert!(!introspects(&doc("{ __typename products { __typename } }")));
    }
}
