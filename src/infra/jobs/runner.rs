//! The workers: claim, run with a heartbeat, write the outcome through an outage; jobs run inline
//! by key; shutdown that hands running jobs back.

use super::storage::unlocked;
use super::*;

/// Runs the job with unique key `key` (of kind `J`) now, in the caller's task, if it is still
/// queued — a runner that got it first keeps it. The same claim, lease, outcome, backoff and
/// metrics as a worker's, without a heartbeat (the work must end within `JOB_LEASE_SECONDS`).
/// For work that should follow the request that asked for it at once, yet must still happen if
/// this process dies first: the request enqueues it in its transaction and calls this after the
/// commit. Returns the state written, or `None` when the job was not there to run.
pub async fn run_now_by_key<J: Job>(
    st: &J::Context,
    job: &J,
    key: &str,
) -> AppResult<Option<JobState>> {
    run_inline(st, J::KIND, key, |payload| {
        Box::pin(async move {
            match serde_json::from_value::<J::Payload>(payload) {
                Ok(payload) => job.run(st, payload).await,
                Err(e) => Err(JobError::Fatal(format!("unreadable payload: {e}"))),
            }
        })
    })
    .await
}

/// [`run_now_by_key`] for a caller that does not know the job's kind: the queued job with unique
/// key `key` runs through the context's registry, built once at start-up (a kind it does not know is
/// left alone, for a runner of a version that knows it).
pub async fn run_queued_now<C: JobContext>(st: &C, key: &str) -> AppResult<Option<JobState>> {
    let Some(queued) = job::Entity::find()
        .filter(job::Column::UniqueKey.eq(key))
        .one(st.db())
        .await?
    else {
        return Ok(None);
    };
    let Some(handler) = st
        .registry()
        .and_then(|r| r.handlers.get(queued.kind.as_str()).cloned())
    else {
        return Ok(None);
    };
    run_inline(st, &queued.kind, key, |payload| {
        handler.start(st.clone(), payload)
    })
    .await
}

async fn run_inline<'a, C: JobContext>(
    st: &'a C,
    kind: &str,
    key: &str,
    start: impl FnOnce(Value) -> BoxFuture<'a, Result<(), JobError>>,
) -> AppResult<Option<JobState>> {
    let worker = format!("inline-{}", std::process::id());
    let now = st.clock().now();
    let lease = Duration::seconds(st.config().jobs.lease_seconds);
    let claimed = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(JobState::Running))
        .col_expr(
            job::Column::Attempts,
            Expr::col(job::Column::Attempts).add(1),
        )
        .col_expr(job::Column::LockedBy, Expr::value(worker.as_str()))
        .col_expr(job::Column::LockedUntil, Expr::value(now + lease))
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .filter(job::Column::UniqueKey.eq(key))
        .filter(job::Column::Kind.eq(kind))
        .filter(job::Column::State.eq(JobState::Queued))
        .filter(job::Column::RunAt.lte(now))
        .exec(st.db())
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    let Some(row) = job::Entity::find()
        .filter(job::Column::UniqueKey.eq(key))
        .one(st.db())
        .await?
    else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let outcome = start(row.payload.clone()).await;
    observe_duration(st, &row.kind, started);
    finish(st, &row, &worker, &outcome).await
}

fn observe_duration<C: JobContext>(st: &C, kind: &str, started: std::time::Instant) {
    st.metrics()
        .job_duration
        .with_label_values(&[kind])
        .observe(started.elapsed().as_secs_f64());
}

/// How a runner works: worker count, lease, and how long an idle worker waits before looking
/// again.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub workers: usize,
    pub lease: Duration,
    pub poll: std::time::Duration,
}

impl RunnerOptions {
    pub fn from_config(cfg: &Config) -> Self {
        RunnerOptions {
            workers: cfg.jobs.workers,
            lease: Duration::seconds(cfg.jobs.lease_seconds),
            poll: std::time::Duration::from_millis(cfg.jobs.poll_milliseconds),
        }
    }
}

/// Aborts the task it holds when dropped (a worker stopped mid-attempt stops its handler too).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Workers of one process. Cloning is cheap (the registry is shared).
pub struct Runner<C> {
    st: C,
    registry: Arc<Registry<C>>,
    opts: RunnerOptions,
    /// Names this process's workers (`<host>-<pid>-<random>#<n>`).
    id: String,
}

impl<C: Clone> Clone for Runner<C> {
    fn clone(&self) -> Self {
        Runner {
            st: self.st.clone(),
            registry: Arc::clone(&self.registry),
            opts: self.opts.clone(),
            id: self.id.clone(),
        }
    }
}

impl<C: JobContext> Runner<C> {
    pub fn new(st: C, registry: Registry<C>, opts: RunnerOptions) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let id = format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Runner {
            st,
            registry: Arc::new(registry),
            opts,
            id,
        }
    }

    /// The name of worker `n` of this runner, as `locked_by` shows it.
    pub fn worker(&self, n: usize) -> String {
        format!("{}#{n}", self.id)
    }

    /// Claims one due job as `worker` and runs it to its outcome; the job's id, or `None` when
    /// nothing was due.
    pub async fn run_once(&self, worker: &str) -> AppResult<Option<i64>> {
        let kinds = self.registry.kinds();
        let Some(claimed) = claim(&self.st, worker, &kinds, self.opts.lease).await? else {
            return Ok(None);
        };
        self.execute(&claimed, worker).await?;
        Ok(Some(claimed.id))
    }

    async fn execute(&self, claimed: &job::Model, worker: &str) -> AppResult<()> {
        let Some(handler) = self.registry.handlers.get(claimed.kind.as_str()).cloned() else {
            return Ok(());
        };
        let st = &self.st;
        // The heartbeat renews the lease at a third of its length while the handler runs.
        let heartbeat = {
            let (st, worker, lease, id) =
                (st.clone(), worker.to_string(), self.opts.lease, claimed.id);
            let every = (lease / 3)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(1))
                .max(std::time::Duration::from_millis(50));
            AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match renew(&st, id, &worker, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = id, "job lease lost; another worker may run it");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(job = id, error = %e.message, "job lease renewal failed")
                        }
                    }
                }
            }))
        };
        let started = std::time::Instant::now();
        let mut attempt = AbortOnDrop(tokio::spawn(
            handler.start(st.clone(), claimed.payload.clone()),
        ));
        let outcome = match (&mut attempt.0).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(JobError::Retry("the handler panicked".into())),
            Err(_) => Err(JobError::Retry("the attempt was cancelled".into())),
        };
        observe_duration(st, &claimed.kind, started);
        // The outcome is written even across a database outage (the heartbeat keeps the lease
        // meanwhile), so work that was done is not run again and an attempt that died with the
        // connection is given back rather than counted.
        let written = self.finish_through_outage(claimed, worker, &outcome).await;
        drop(heartbeat);
        match written? {
            Some(state) => {
                if let Err(e) = &outcome {
                    tracing::warn!(job = claimed.id, kind = %claimed.kind, attempt = claimed.attempts,
                        state = state.as_str(), error = %e.message(), "job attempt failed");
                }
            }
            None => tracing::warn!(
                job = claimed.id,
                kind = %claimed.kind,
                "job outcome dropped: the lease was lost meanwhile"
            ),
        }
        Ok(())
    }

    /// [`finish`], tried again while the database is unreachable, for up to one lease.
    async fn finish_through_outage(
        &self,
        claimed: &job::Model,
        worker: &str,
        outcome: &Result<(), JobError>,
    ) -> AppResult<Option<JobState>> {
        let give_up = std::time::Instant::now()
            + self
                .opts
                .lease
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(60));
        let mut wait = std::time::Duration::from_millis(200);
        loop {
            match finish(&self.st, claimed, worker, outcome).await {
                Err(e)
                    if e.code == ErrorCode::ServiceUnavailable
                        && std::time::Instant::now() + wait < give_up =>
                {
                    tracing::warn!(
                        job = claimed.id,
                        "job outcome not written yet: database unreachable"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
                written => return written,
            }
        }
    }

    /// One pass of every [`Schedule`] in the registry (the runner does this on every poll).
    pub async fn schedule_once(&self) -> AppResult<()> {
        for s in &self.registry.schedules {
            s.tick(&self.st).await?;
        }
        Ok(())
    }

    /// Starts the workers. Nothing runs when the registry is empty or `workers` is 0.
    pub fn start(self) -> RunnerHandle<C> {
        let token = CancellationToken::new();
        let mut tasks = Vec::new();
        if !self.registry.is_empty() {
            for n in 0..self.opts.workers {
                let (runner, token, worker) = (self.clone(), token.clone(), self.worker(n));
                tasks.push(tokio::spawn(async move {
                    runner.work(&worker, &token).await;
                }));
            }
            tracing::info!(workers = self.opts.workers, kinds = ?self.registry.kinds(), "job runner started");
        }
        if self.opts.workers > 0 && !self.registry.schedules.is_empty() {
            let (runner, token) = (self.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = runner.schedule_once().await {
                        tracing::warn!(error = %e.message, "job scheduling failed");
                    }
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(runner.opts.poll) => {}
                    }
                }
            }));
        }
        // The queue's gauges, kept by every process that runs jobs.
        let (st, gauge_token) = (self.st.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = refresh_gauges(&st).await {
                    tracing::warn!(error = %e.message, "job gauges not refreshed");
                }
                tokio::select! {
                    _ = gauge_token.cancelled() => break,
                    _ = tokio::time::sleep(GAUGE_REFRESH) => {}
                }
            }
        }));
        RunnerHandle {
            token,
            tasks,
            runner: self,
        }
    }

    async fn work(&self, worker: &str, token: &CancellationToken) {
        while !token.is_cancelled() {
            let wait = match self.run_once(worker).await {
                Ok(Some(_)) => continue,
                Ok(None) => self.opts.poll,
                Err(e) => {
                    tracing::warn!(worker, error = %e.message, "job claim failed");
                    self.opts.poll * 2
                }
            };
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The running workers of a [`Runner`].
pub struct RunnerHandle<C> {
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    runner: Runner<C>,
}

impl<C: JobContext> RunnerHandle<C> {
    /// Stops claiming, lets running attempts finish for up to `grace`, then stops the rest and
    /// hands their jobs back to the queue (the interrupted attempt is not counted). Returns how
    /// many jobs were handed back.
    pub async fn shutdown(self, grace: std::time::Duration) -> AppResult<u64> {
        self.token.cancel();
        let mut tasks = self.tasks;
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(grace, all).await.is_err() {
            for t in &tasks {
                t.abort();
            }
        }
        let st = &self.runner.st;
        let now = st.clock().now();
        let released = unlocked(job::Entity::update_many())
            .col_expr(job::Column::State, Expr::value(JobState::Queued))
            .col_expr(job::Column::RunAt, Expr::value(now))
            .col_expr(
                job::Column::Attempts,
                Expr::col(job::Column::Attempts).sub(1),
            )
            .col_expr(job::Column::UpdatedAt, Expr::value(now))
            .filter(job::Column::State.eq(JobState::Running))
            .filter(job::Column::LockedBy.starts_with(format!("{}#", self.runner.id)))
            .exec(st.db())
            .await?
            .rows_affected;
        if released > 0 {
            tracing::info!(released, "jobs handed back to the queue at shutdown");
        }
        Ok(released)
    }
}
