//! Infrastructure: the leaf pieces every context leans on and that know nothing of the store's
//! rules — the job machinery (generic over what jobs run with; it names no job kind), token keys, password hashing, rate limits, the catalogue's freshness, encryption at rest,
//! the mail transport, signed URLs and the file store. They depend only on `config`, `clock`, `db`, `error`, `domain` and
//! `entities`; nothing here names `services`, `graphql`, `rest`, `http` or `state`
//! (`tests/api/architecture.rs` checks it).

pub mod crypto;
pub mod freshness;
pub mod jobs;
pub mod mail;
pub mod passwords;
pub mod rate_limit;
pub mod storage;
pub mod tokens;
pub mod url_signing;
