//! Platform: what every context builds on and that knows no store rule of its own — domain events,
//! the audit log and the outbox's dispatch (`events`), durable jobs (`jobs`), stored files,
//! pagination, unique-violation mapping, admin row writes, idempotency keys, log queries and the
//! mail templates' rendering.

pub mod date_range;
pub mod events;
pub mod files;
pub mod idempotency;
pub mod jobs;
pub mod logs;
pub mod pagination;
pub mod row_write;
pub mod templates;
pub mod unique;
