//! Privacy (Ley 21.719): the personal-data export, the erasure of an account, the requests' work
//! states both jobs share (`requests`), and the retention sweep (`housekeeping`) that purges what
//! the store no longer needs to keep.

pub mod data_export;
pub mod erasure;
pub mod housekeeping;
pub mod requests;
