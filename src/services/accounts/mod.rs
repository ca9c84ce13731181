//! Accounts: who a customer, an admin or a store system (`api_keys`) is and how they prove it —
//! registration and sign-in
//! (`auth`), users, sessions, two-factor, email verification, password reset, mailed links, the
//! lockout, addresses, consents, the refusals owed to an account whose erasure is pending
//! (`erasing`) and the stored-data check.

pub mod addresses;
pub mod api_keys;
pub mod auth;
pub mod consents;
pub mod data_check;
pub mod erasing;
pub mod links;
pub mod lockout;
pub mod password_reset;
pub mod sessions;
pub mod two_factor;
pub mod users;
pub mod verification;
