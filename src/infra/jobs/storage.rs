//! The queue's rows: enqueue, claim with a lease, renew, finish with backoff, retry, purge, count.

use super::*;

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    /// Not before this time (default: now).
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// A second job with the same key is not created.
    pub unique_key: Option<String>,
}

impl NewJob {
    /// A job of kind `J` with its typed payload, which must serialize to a JSON object (the
    /// operators' API documents `payload` as one).
    pub fn of<J: Job>(payload: &J::Payload) -> AppResult<Self> {
        let payload = serde_json::to_value(payload).map_err(AppError::internal)?;
        if !payload.is_object() {
            return Err(AppError::internal(format!(
                "the payload of a {} job must be a JSON object",
                J::KIND
            )));
        }
        Ok(NewJob {
            kind: J::KIND,
            payload,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            unique_key: None,
        })
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = Ord::max(n, 1);
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
}

/// Creates a job, in the caller's transaction when `conn` is one (so the job exists exactly when
/// the change that asked for it commits). `None` when a job with the same unique key exists.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    new: NewJob,
) -> AppResult<Option<i64>> {
    let row = job::ActiveModel {
        kind: Set(new.kind.to_string()),
        payload: Set(new.payload),
        state: Set(JobState::Queued),
        run_at: Set(new.run_at.unwrap_or(now)),
        attempts: Set(0),
        max_attempts: Set(new.max_attempts),
        locked_by: Set(None),
        locked_until: Set(None),
        last_error: Set(None),
        unique_key: Set(new.unique_key),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let inserted = job::Entity::insert(row)
        .on_conflict(
            OnConflict::column(job::Column::UniqueKey)
                .do_nothing()
                .to_owned(),
        )
        .exec(conn)
        .await;
    match inserted {
        Ok(r) => Ok(Some(r.last_insert_id)),
        Err(DbErr::RecordNotInserted) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: 5 s, 10 s, 20 s, … up
/// to an hour, each ±20 %.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 30) - 1;
    let base = Ord::min(
        BACKOFF_BASE_SECONDS.saturating_mul(1_i64 << exp),
        BACKOFF_MAX_SECONDS,
    );
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((base as f64 * 1000.0 * jitter) as i64)
}

/// Claims the oldest due job of one of `kinds` for `worker`, with a lease of `lease`: a queued or
/// failed job whose `run_at` has come, or a running one whose lease has passed (its worker died).
/// A job whose lease passed on its last allowed attempt is dead-lettered instead.
pub async fn claim<C: JobContext>(
    st: &C,
    worker: &str,
    kinds: &[&str],
    lease: Duration,
) -> AppResult<Option<job::Model>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let now = st.clock().now();
    let txn = begin_write(st.db()).await?;
    let due = Condition::any()
        .add(
            Condition::all()
                .add(job::Column::State.is_in([JobState::Queued, JobState::Failed]))
                .add(job::Column::RunAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(job::Column::State.eq(JobState::Running))
                .add(job::Column::LockedUntil.lt(now)),
        );
    let mut q = job::Entity::find()
        .filter(job::Column::Kind.is_in(kinds.iter().copied()))
        .filter(due)
        .order_by_asc(job::Column::RunAt)
        .order_by_asc(job::Column::Id)
        .limit(1);
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let Some(found) = q.one(&txn).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    let base = job::Entity::update_many()
        .filter(job::Column::Id.eq(found.id))
        .filter(job::Column::State.eq(found.state))
        .col_expr(job::Column::UpdatedAt, Expr::value(now));
    if found.state == JobState::Running && found.attempts >= found.max_attempts {
        unlocked(base)
            .col_expr(job::Column::State, Expr::value(JobState::Dead))
            .col_expr(
                job::Column::LastError,
                Expr::value("the worker's lease ran out on the last attempt"),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        st.metrics()
            .jobs_dead
            .with_label_values(&[found.kind.as_str()])
            .inc();
        tracing::warn!(job = found.id, kind = %found.kind, "job dead: lease ran out on its last attempt");
        return Ok(None);
    }
    let claimed = base
        .col_expr(job::Column::State, Expr::value(JobState::Running))
        .col_expr(
            job::Column::Attempts,
            Expr::col(job::Column::Attempts).add(1),
        )
        .col_expr(job::Column::LockedBy, Expr::value(worker))
        .col_expr(job::Column::LockedUntil, Expr::value(now + lease))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(None);
    }
    let row = job::Entity::find_by_id(found.id).one(&txn).await?;
    txn.commit().await?;
    Ok(row)
}

/// An update that ends the lease: no holder, no lease end.
pub(super) fn unlocked(update: UpdateMany<job::Entity>) -> UpdateMany<job::Entity> {
    update
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// Extends `worker`'s lease on job `id`; `false` when the worker no longer holds it.
pub async fn renew<C: JobContext>(
    st: &C,
    id: i64,
    worker: &str,
    lease: Duration,
) -> AppResult<bool> {
    let now = st.clock().now();
    let r = job::Entity::update_many()
        .col_expr(job::Column::LockedUntil, Expr::value(now + lease))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.eq(JobState::Running))
        .filter(job::Column::LockedBy.eq(worker))
        .exec(st.db())
        .await?;
    Ok(r.rows_affected == 1)
}

/// Records an attempt's outcome, if `worker` still holds the job: `done`; `failed` with the next
/// `run_at` after a backoff; `failed` again shortly, with the attempt given back, when the database
/// was unreachable; or `dead` after the last attempt or a fatal error. Returns the state written,
/// or `None` when the lease was lost (another worker's outcome stands).
pub async fn finish<C: JobContext>(
    st: &C,
    claimed: &job::Model,
    worker: &str,
    outcome: &Result<(), JobError>,
) -> AppResult<Option<JobState>> {
    let now = st.clock().now();
    let mut update = unlocked(job::Entity::update_many())
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(claimed.id))
        .filter(job::Column::State.eq(JobState::Running))
        .filter(job::Column::LockedBy.eq(worker));
    let state = match outcome {
        Ok(()) => JobState::Done,
        Err(JobError::Retry(_)) if claimed.attempts < claimed.max_attempts => {
            update = update.col_expr(
                job::Column::RunAt,
                Expr::value(now + backoff(claimed.attempts)),
            );
            JobState::Failed
        }
        Err(JobError::Unavailable(_)) => {
            update = update
                .col_expr(
                    job::Column::RunAt,
                    Expr::value(now + Duration::seconds(UNAVAILABLE_RETRY_SECONDS)),
                )
                .col_expr(
                    job::Column::Attempts,
                    Expr::col(job::Column::Attempts).sub(1),
                );
            JobState::Failed
        }
        Err(_) => JobState::Dead,
    };
    update = update.col_expr(job::Column::State, Expr::value(state));
    if let Err(e) = outcome {
        let message: String = e.message().chars().take(ERROR_MAX_CHARS).collect();
        update = update.col_expr(job::Column::LastError, Expr::value(message));
    }
    let r = update.exec(st.db()).await?;
    if r.rows_affected != 1 {
        return Ok(None);
    }
    let kind = [claimed.kind.as_str()];
    match state {
        JobState::Failed => st.metrics().jobs_failed.with_label_values(&kind).inc(),
        JobState::Dead => {
            st.metrics().jobs_failed.with_label_values(&kind).inc();
            st.metrics().jobs_dead.with_label_values(&kind).inc();
        }
        _ => {}
    }
    Ok(Some(state))
}

/// Done jobs are kept this long for operators to look at, then purged.
pub const DONE_RETENTION_DAYS: i64 = 7;
/// Dead jobs are kept this long (an operator may still retry them), then purged.
pub const DEAD_RETENTION_DAYS: i64 = 30;

/// Deletes done jobs older than [`DONE_RETENTION_DAYS`] and dead ones older than
/// [`DEAD_RETENTION_DAYS`] (by their last update); how many.
pub async fn purge_finished<C: JobContext>(st: &C) -> AppResult<u64> {
    let now = st.clock().now();
    let old = |state: JobState, days: i64| {
        Condition::all()
            .add(job::Column::State.eq(state))
            .add(job::Column::UpdatedAt.lt(now - Duration::days(days)))
    };
    Ok(job::Entity::delete_many()
        .filter(
            Condition::any()
                .add(old(JobState::Done, DONE_RETENTION_DAYS))
                .add(old(JobState::Dead, DEAD_RETENTION_DAYS)),
        )
        .exec(st.db())
        .await?
        .rows_affected)
}

/// Makes a dead or failed job due now, with a fresh set of attempts (an operator's retry);
/// `conflict` for a job in any other state.
pub async fn retry_in<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    id: i64,
) -> AppResult<job::Model> {
    let r = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Queued))
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::Attempts, Expr::value(0))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::State.is_in([JobState::Dead, JobState::Failed]))
        .exec(conn)
        .await?;
    let found = job::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("Job"))?;
    if r.rows_affected != 1 {
        return Err(AppError::conflict_field(
            "state",
            "not_retryable",
            "Only a dead or failed job can be retried",
        ));
    }
    Ok(found)
}

/// How often a process that runs jobs refreshes `jobs_pending` and `jobs_running`.
pub const GAUGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Sets `jobs_pending` and `jobs_running` from the queue (every process's jobs). The runner does
/// it every [`GAUGE_REFRESH`]; `/metrics` itself never queries the database.
pub async fn refresh_gauges<C: JobContext>(st: &C) -> AppResult<()> {
    let (pending, running) = counts(st).await?;
    st.metrics().jobs_pending.set(pending);
    st.metrics().jobs_running.set(running);
    Ok(())
}

/// Jobs waiting (queued or failed, whatever their `run_at`) and jobs running, across processes.
pub async fn counts<C: JobContext>(st: &C) -> AppResult<(i64, i64)> {
    let count = |states: Vec<JobState>| async move {
        job::Entity::find()
            .filter(job::Column::State.is_in(states))
            .count(st.db())
            .await
    };
    let pending = count(vec![JobState::Queued, JobState::Failed]).await?;
    let running = count(vec![JobState::Running]).await?;
    Ok((pending as i64, running as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempts in 1..=12 {
            let d = backoff(attempts).num_milliseconds() as f64 / 1000.0;
            let base = (BACKOFF_BASE_SECONDS as f64 * 2f64.powi(attempts - 1))
                .min(BACKOFF_MAX_SECONDS as f64);
            assert!(
                d >= base * 0.8 - 0.001 && d <= base * 1.2 + 0.001,
                "{attempts}: {d}"
            );
        }
        // Consecutive delays never overlap (±20 % around a doubling base).
        assert!(backoff(2) > backoff(1) && backoff(3) > backoff(2));
        assert!(backoff(40).num_seconds() <= (BACKOFF_MAX_SECONDS as f64 * 1.2) as i64);
    }
}
