//! The account lockout: after `LOGIN_FAILURE_LIMIT` failed attempts at an account's credentials
//! within `LOGIN_FAILURE_WINDOW_SECONDS` — wrong passwords, wrong second-factor or recovery codes,
//! wherever they are asked for (sign-in, the second step, turning two-factor off, asking for or
//! cancelling an erasure, changing the password) — the account refuses every further attempt with
//! 429 until the oldest of them leaves the window.
//!
//! Take the attempt, then evaluate: [`take`] writes the attempt (committed) before the credential
//! is checked, then counts the account's attempts in the window, its own included; over the limit,
//! it withdraws and refuses. An attempt that proves right is deleted ([`Attempt::passed`]); one that
//! fails — or never finishes — stays and counts. Of concurrent guesses, each one's count includes
//! every attempt committed before it, so however many arrive at once, at most the limit are
//! evaluated. Kept in the database, so it holds across server processes.

use chrono::Duration;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entities::credential_attempt::{self, Column, Entity};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// What is being tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Password,
    SecondFactor,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::SecondFactor => "second_factor",
        }
    }
}

/// An attempt in progress; it counts as a failure unless [`Attempt::passed`] is called.
#[must_use = "an attempt counts as a failure unless it is passed"]
#[derive(Debug)]
pub struct Attempt {
    id: i64,
}

impl Attempt {
    /// The credential proved right: the attempt is forgotten. Call it outside any transaction of
    /// the caller's (on SQLite a second writer would wait on that transaction).
    pub async fn passed(self, st: &AppState) -> AppResult<()> {
        Entity::delete_by_id(self.id).exec(&st.db).await?;
        Ok(())
    }

    /// The credential was wrong: the attempt stays, and counts until it leaves the window.
    pub fn failed(self) {}

    /// [`passed`](Self::passed) when `proved`, [`failed`](Self::failed) otherwise.
    pub async fn settle(self, st: &AppState, proved: bool) -> AppResult<()> {
        if proved {
            self.passed(st).await
        } else {
            self.failed();
            Ok(())
        }
    }
}

/// Takes an attempt at `user_id`'s credentials, or refuses with 429 (`Retry-After`: until the
/// oldest counted attempt leaves the window) when the window already holds the limit.
pub async fn take(st: &AppState, user_id: i64, kind: Kind) -> AppResult<Attempt> {
    let now = st.clock.now();
    let window = Duration::seconds(st.config.auth.login_failure_window_seconds);
    let limit = u64::from(st.config.auth.login_failure_limit);
    let mine = credential_attempt::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind.as_str().to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&st.db)
    .await?;
    // Counted after the insert committed: every attempt committed before this count is in it.
    let recent: Vec<(i64, chrono::DateTime<chrono::Utc>)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::CreatedAt)
        .filter(Column::UserId.eq(user_id))
        .filter(Column::CreatedAt.gt(now - window))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(limit + 1)
        .into_tuple()
        .all(&st.db)
        .await?;
    if (recent.len() as u64) <= limit {
        return Ok(Attempt { id: mine.id });
    }
    Entity::delete_by_id(mine.id).exec(&st.db).await?;
    let oldest = recent
        .iter()
        .filter(|(id, _)| *id != mine.id)
        .take(limit as usize)
        .map(|(_, at)| *at)
        .min()
        .unwrap_or(now);
    let wait = std::cmp::max((oldest + window - now).num_seconds(), 1) as u64;
    st.metrics
        .rate_limited
        .with_label_values(&["login_failures"])
        .inc();
    Err(AppError::rate_limited(wait)
        .with_message("Too many failed logins for this account; try again later"))
}

/// Attempts that left the window long ago, for the periodic purge.
pub async fn purge(st: &AppState) -> AppResult<u64> {
    let window = Duration::seconds(st.config.auth.login_failure_window_seconds);
    Ok(Entity::delete_many()
        .filter(Column::CreatedAt.lt(st.clock.now() - window - Duration::days(1)))
        .exec(&st.db)
        .await?
        .rows_affected)
}
