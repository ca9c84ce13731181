//! The one check every string a request carries passes before anything runs: no control
//! characters but tab and line breaks (`domain::check_tree`). It reads the variables and the
//! document's literals, so it covers GraphQL and every REST row alike — the bridge hands REST
//! query parameters, JSON bodies and multipart text fields to GraphQL as variables. A refusal is
//! a `validation_error` naming the field in the request's own naming: an input object's fields by
//! their names (`email`, `items[0].name`), a scalar argument or variable by its own (`q`).

use async_graphql::parser::types::{Directive, ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{Name, Positioned};
use async_graphql_value::{ConstValue, Value};

use crate::domain::{check_tree, Invalid, Shape, Shaped};
use crate::error::AppError;

impl Shaped for ConstValue {
    fn shape(&self) -> Shape<'_, Self> {
        match self {
            ConstValue::String(s) => Shape::Text(s),
            ConstValue::List(items) => Shape::List(items),
            ConstValue::Object(fields) => {
                Shape::Object(fields.iter().map(|(k, v)| (k.as_str(), v)).collect())
            }
            _ => Shape::Other,
        }
    }
}

impl Shaped for Value {
    fn shape(&self) -> Shape<'_, Self> {
        match self {
            Value::String(s) => Shape::Text(s),
            Value::List(items) => Shape::List(items),
            Value::Object(fields) => {
                Shape::Object(fields.iter().map(|(k, v)| (k.as_str(), v)).collect())
            }
            // A variable's value is checked among the variables.
            _ => Shape::Other,
        }
    }
}

fn arguments(args: &[(Positioned<Name>, Positioned<Value>)]) -> Result<(), Invalid> {
    args.iter()
        .try_for_each(|(name, value)| check_tree(name.node.as_str(), &value.node, true))
}

fn directives(list: &[Positioned<Directive>]) -> Result<(), Invalid> {
    list.iter().try_for_each(|d| arguments(&d.node.arguments))
}

fn field(f: &Field) -> Result<(), Invalid> {
    arguments(&f.arguments)?;
    directives(&f.directives)?;
    selection_set(&f.selection_set.node)
}

fn selection_set(set: &SelectionSet) -> Result<(), Invalid> {
    set.items.iter().try_for_each(|item| match &item.node {
        Selection::Field(f) => field(&f.node),
        Selection::FragmentSpread(s) => directives(&s.node.directives),
        Selection::InlineFragment(i) => {
            directives(&i.node.directives)?;
            selection_set(&i.node.selection_set.node)
        }
    })
}

fn document(doc: &ExecutableDocument) -> Result<(), Invalid> {
    for (_, op) in doc.operations.iter() {
        let op = &op.node;
        for var in &op.variable_definitions {
            if let Some(default) = &var.node.default_value {
                check_tree(var.node.name.node.as_str(), &default.node, true)?;
            }
        }
        directives(&op.directives)?;
        selection_set(&op.selection_set.node)?;
    }
    doc.fragments.values().try_for_each(|f| {
        directives(&f.node.directives)?;
        selection_set(&f.node.selection_set.node)
    })
}

/// Refuses a request whose variables or document literals hold a control character text may
/// not hold. A document that does not parse is left to execution, which explains it.
pub fn check(request: &mut async_graphql::Request) -> Result<(), AppError> {
    for (name, value) in request.variables.iter() {
        check_tree(name.as_str(), value, true)?;
    }
    if let Ok(doc) = request.parsed_query() {
        document(doc)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_field(query: &str, variables: serde_json::Value) -> Option<String> {
        let mut request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        check(&mut request)
            .err()
            .map(|e| e.details[0].field.clone())
    }

    #[test]
    fn names_the_field_in_variables_and_literals() {
        let q = "query($q: String, $input: LoginInput) { a(q: $q) }";
        assert_eq!(
            refused_field(q, serde_json::json!({"q": "a\u{0}b"})),
            Some("q".into())
        );
        assert_eq!(
            refused_field(q, serde_json::json!({"input": {"email": "x\u{0}@y.cl"}})),
            Some("email".into())
        );
        assert_eq!(
            refused_field(
                q,
                serde_json::json!({"input": {"items": [{"n": "ok"}, {"n": "\u{7}"}]}})
            ),
            Some("items[1].n".into())
        );
        assert_eq!(
            refused_field(
                r#"{ products(filter: {q: "a\u0000b"}) { total } }"#,
                serde_json::json!({})
            ),
            Some("q".into())
        );
        assert_eq!(
            refused_field(
                r#"query { ...F } fragment F on Query { products(q: "\u001b") { total } }"#,
                serde_json::json!({})
            ),
            Some("q".into())
        );
        assert_eq!(
            refused_field(
                "query($q: String = \"a\\u0000\") { a(q: $q) }",
                serde_json::json!({})
            ),
            Some("q".into())
        );
    }

    #[test]
    fn tab_and_line_breaks_pass() {
        assert_eq!(
            refused_field(
                r#"mutation { review(body: "line\nnext\ttab\r\n") { id } }"#,
                serde_json::json!({"input": {"body": "a\nb"}})
            ),
            None
        );
    }
}
