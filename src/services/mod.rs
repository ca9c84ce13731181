//! Domain services: business rules, transactions and the audit log. Resolvers and webhooks call these.
//!
//! Grouped by bounded context, ranked from low to high; a context imports only contexts ranked
//! below it (`tests/api/architecture.rs` checks it): `platform` < `accounts` < `medicinal` <
//! `catalog` < `commerce` < `payments` < `notifications` < `privacy` < `integrations`. `composition` is where they
//! are assembled (job kinds, subscribers, in-transaction reactions): the one file that names them all.

pub mod platform;

pub mod accounts;
pub mod medicinal;

pub mod catalog;
pub mod commerce;
pub mod payments;

pub mod notifications;
pub mod privacy;

pub mod integrations;

pub mod composition;
