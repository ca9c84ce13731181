//! The catalogue: categories, products, variants, their reviews, the catalogue's text rules, and
//! CSV import/export. Who may see medicinal products is the medicinal context's gate.

pub mod categories;
pub mod csv_io;
pub mod products;
pub mod reviews;
pub mod text;
pub mod variants;
