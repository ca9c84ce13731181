//! The job kinds a runner knows and the schedules it ticks.

use super::*;

pub(super) type Attempt = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// A handler with its payload type erased, so that one registry holds every kind.
pub(super) trait Handler<C>: Send + Sync {
    fn start(self: Arc<Self>, st: C, payload: Value) -> Attempt;
}

impl<J: Job> Handler<J::Context> for J {
    fn start(self: Arc<Self>, st: J::Context, payload: Value) -> Attempt {
        Box::pin(async move {
            let payload: J::Payload = serde_json::from_value(payload)
                .map_err(|e| JobError::Fatal(format!("unreadable payload: {e}")))?;
            self.run(&st, payload).await
        })
    }
}

/// The kinds a runner knows, and what it schedules. A worker only claims jobs of these kinds, so
/// processes of two versions on one database never take each other's unknown work.
pub struct Registry<C> {
    pub(super) handlers: HashMap<&'static str, Arc<dyn Handler<C>>>,
    pub(super) schedules: Vec<Arc<dyn Schedule<C>>>,
}

impl<C> Clone for Registry<C> {
    fn clone(&self) -> Self {
        Registry {
            handlers: self.handlers.clone(),
            schedules: self.schedules.clone(),
        }
    }
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            handlers: HashMap::new(),
            schedules: Vec::new(),
        }
    }
}

impl<C: JobContext> Registry<C> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with<J: Job<Context = C>>(mut self, job: J) -> Self {
        self.handlers.insert(J::KIND, Arc::new(job));
        self
    }

    /// Registers `job` and runs it once per `interval` across every process on the database (see
    /// [`Every`]).
    pub fn every<J: Job<Context = C>>(self, interval: Duration, job: J, payload: J::Payload) -> Self
    where
        J::Payload: Clone + Sync,
    {
        self.with(job).schedule(Every::<J>::new(interval, payload))
    }

    /// [`Registry::every`] for a periodic job that takes no payload.
    pub fn periodic<P: Periodic<Context = C>>(self, interval: Duration, job: P) -> Self {
        self.every(interval, job, NoPayload {})
    }

    /// Ticks `schedule` on every poll of the runner.
    pub fn schedule(mut self, schedule: impl Schedule<C>) -> Self {
        self.schedules.push(Arc::new(schedule));
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.handlers.keys().copied().collect();
        k.sort_unstable();
        k
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}
