//! What a failed validation says: a message, and each field with its issue. The edge turns it
//! into a `validation_error` (`AppError: From<Invalid>`), so the domain needs nothing above it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldIssue {
    /// The field, in the request's own naming (`email`, `items[0].variantId`).
    #[schema(example = "email")]
    pub field: String,
    /// A stable, machine-readable reason (`invalid_format`, `required`, `unknown_field`, ...).
    #[schema(example = "invalid_format")]
    pub issue: String,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, issue: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            issue: issue.into(),
        }
    }
}

/// A value the domain refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub details: Vec<FieldIssue>,
}

impl Invalid {
    /// `field` has `issue`, explained by `message`.
    pub fn new(field: &str, issue: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: vec![FieldIssue::new(field, issue)],
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}
