//! Scalars with the spec's wire format. `DateTime` is the domain's [`Timestamp`], defined in
//! `domain` so services can take it without depending on this layer.

pub use crate::domain::Timestamp;
