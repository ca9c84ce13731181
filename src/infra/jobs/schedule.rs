//! Work a runner creates on every poll: periodic jobs, one per interval slot across processes.

use super::*;

/// Work a runner does on every poll besides claiming: creating the jobs that have become due
/// (the outbox's dispatch, periodic slots). Every process that runs jobs ticks, so a tick must be
/// idempotent across processes (unique keys).
pub trait Schedule<C>: Send + Sync + 'static {
    fn tick<'a>(&'a self, st: &'a C) -> BoxFuture<'a, AppResult<()>>;
}

/// A periodic job: `J` runs once per `interval` across any number of processes on one database.
/// Time is cut into slots of `interval` (from the Unix epoch); a process's tick creates the job of
/// the slot it is in, keyed `<kind>@<slot start>`, so every process ticking in that slot creates
/// the same job and one worker runs it. A run that fails is not retried (max_attempts 1: it shows
/// as `dead` with its error, and the next slot's run does the work); one that found the database
/// unreachable runs again shortly, as every job does.
pub struct Every<J: Job> {
    interval: Duration,
    payload: J::Payload,
    /// The last slot this process created (or found) the job of.
    last: std::sync::Mutex<Option<i64>>,
}

impl<J: Job> Every<J> {
    pub fn new(interval: Duration, payload: J::Payload) -> Self {
        Every {
            interval: Ord::max(interval, Duration::seconds(1)),
            payload,
            last: std::sync::Mutex::new(None),
        }
    }

    /// The slot `now` is in, and when it started.
    fn slot(&self, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
        let width = self.interval.num_milliseconds();
        let slot = now.timestamp_millis().div_euclid(width);
        let start = DateTime::<Utc>::from_timestamp_millis(slot * width).unwrap_or(now);
        (slot, start)
    }
}

/// The unique key of `kind`'s job for the slot starting at `start`.
pub fn slot_key(kind: &str, start: DateTime<Utc>) -> String {
    format!(
        "{kind}@{}",
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

impl<J: Job> Schedule<J::Context> for Every<J>
where
    J::Payload: Clone + Sync,
{
    fn tick<'a>(&'a self, st: &'a J::Context) -> BoxFuture<'a, AppResult<()>> {
        Box::pin(async move {
            let now = st.clock().now();
            let (slot, start) = self.slot(now);
            if *self.last.lock().expect("slot memo") == Some(slot) {
                return Ok(());
            }
            let new = NewJob::of::<J>(&self.payload)?
                .unique(slot_key(J::KIND, start))
                .max_attempts(1)
                .run_at(start);
            enqueue(st.db(), now, new).await?;
            *self.last.lock().expect("slot memo") = Some(slot);
            Ok(())
        })
    }
}
