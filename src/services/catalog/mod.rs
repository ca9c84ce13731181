//! The catalogue: categories, products, variants, the medicinal gate, CSV import/export.

pub mod categories;
pub mod csv_io;
pub mod gate;
pub mod products;
pub mod text;
pub mod variants;

use crate::error::{AppError, FieldIssue};

/// Collects field issues while validating an input, then fails with all of them at once.
#[derive(Default)]
pub struct Issues(pub Vec<FieldIssue>);

impl Issues {
    pub fn take<T, E: Into<AppError>>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(e.into().details);
                None
            }
        }
    }

    pub fn push(&mut self, field: &str, issue: &str) {
        self.0.push(FieldIssue::new(field, issue));
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::invalid_fields(self.0))
        }
    }
}
