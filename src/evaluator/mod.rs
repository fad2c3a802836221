//! The evaluator: runs every enabled check concurrently under one deadline
//! ([`CheckSet`]), shares each evaluation between the requests that arrive
//! while it runs, reuses a finished result for the cache TTL, and hands
//! every finished evaluation to its [`EvaluationListener`]s (the log line,
//! the EMF metrics).
//!
//! Sharing is the flood guard: requests that arrive while an evaluation runs
//! wait for it and take its result instead of starting their own — also
//! with the cache off (`HEALTH_CACHE_TTL_MS=0`), where the TTL only stops a
//! *finished* result from being served again. (alexliesenfeld/health, whose
//! 1 s cache this follows, only serialises concurrent evaluations under a
//! mutex, each still run in turn.) A burst thus
//! costs the database one evaluation at a time, never a queue of requests
//! for the pooled connection that would end in false `timeout`s.
//!
//! Time is `tokio::time::Instant` throughout, so the deadline and the cache
//! can be tested under tokio's paused clock.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::{join, join_all, BoxFuture, Shared};
use futures_util::FutureExt;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::component::{CheckContext, Enabled, Lifetime, RunCheck};
use crate::db::Database;
use crate::outcome::{CheckOutcome, Reason, Verdict};
use crate::report::{ComponentReport, Report};

/// A component's check as the evaluator runs it, with the component it
/// reports (whose `uses_postgres` says whether it gets the evaluation's
/// Postgres session).
pub struct ComponentCheck {
    pub enabled: Enabled,
    pub check: Box<dyn RunCheck>,
}

/// The checks of this process, in report order, and the database pool
/// whose connection those that use Postgres share within an evaluation.
pub struct CheckSet {
    pub checks: Vec<ComponentCheck>,
    pub database: Option<Database>,
}

/// Receives every finished evaluation (not the cached answers served from
/// it): a place for logs and metrics that keeps them out of the evaluator.
/// The report is the one the cache keeps, so a listener may keep it too.
pub trait EvaluationListener: Send + Sync {
    fn evaluated(&self, report: &Arc<Report>);
}

/// A listener the app also keeps a handle on (the Prometheus exposition,
/// which `/metrics` encodes).
impl<T: EvaluationListener> EvaluationListener for Arc<T> {
    fn evaluated(&self, report: &Arc<Report>) {
        (**self).evaluated(report);
    }
}

pub struct Evaluator {
    engine: Arc<Engine>,
    cache_ttl: Duration,
    cache: Arc<Mutex<Cache>>,
}

/// What one evaluation needs; shared with the task that runs it.
struct Engine {
    checks: CheckSet,
    timeout: Duration,
    listeners: Vec<Box<dyn EvaluationListener>>,
}

type Flight = Shared<BoxFuture<'static, Arc<Report>>>;

#[derive(Default)]
struct Cache {
    last: Option<Arc<Report>>,
    /// The evaluation running now, numbered, which every request that comes
    /// meanwhile joins.
    in_flight: Option<(u64, Flight)>,
    flights: u64,
}

impl Evaluator {
    pub fn new(
        checks: CheckSet,
        timeout: Duration,
        cache_ttl: Duration,
        listeners: Vec<Box<dyn EvaluationListener>>,
    ) -> Self {
        Self {
            engine: Arc::new(Engine {
                checks,
                timeout,
                listeners,
            }),
            cache_ttl,
            cache: Arc::default(),
        }
    }

    pub fn database(&self) -> Option<&Database> {
        self.engine.checks.database.as_ref()
    }

    /// Opens, in the background, what the checks keep between
    /// evaluations (the database connection, Realtime's socket).
    pub fn warm_up(&self, lifetime: Lifetime) {
        if let Some(db) = self.database() {
            db.warm_up();
        }
        for entry in &self.engine.checks.checks {
            entry.check.warm_up(lifetime);
        }
    }

    /// Closes what the checks keep, each within `grace`.
    pub async fn close(&self, grace: Duration) {
        let closing = (self.engine.checks.checks.iter())
            .map(|entry| tokio::time::timeout(grace, entry.check.close()));
        join_all(closing).await;
    }

    /// A finished result younger than the cache TTL, else the evaluation in
    /// flight (joined), else a new one. The evaluation runs in a task of its
    /// own, so a request that goes away (a monitor that hung up) does not
    /// cancel it for the others: every waiter is answered within the
    /// deadline of the evaluation it joined.
    pub async fn report(&self) -> Arc<Report> {
        let (number, flight) = {
            let mut cache = self.cache.lock();
            if let Some(report) = &cache.last {
                if report.measured_at.elapsed() < self.cache_ttl {
                    return report.clone();
                }
            }
            match &cache.in_flight {
                Some(flight) => flight.clone(),
                None => {
                    cache.flights += 1;
                    let number = cache.flights;
                    let flight = self.launch(number);
                    cache.in_flight = Some((number, flight.clone()));
                    (number, flight)
                }
            }
        };
        let report = flight.await;
        // The task normally clears its own flight; this covers a task that
        // ended without doing so (runtime shutting down).
        let mut cache = self.cache.lock();
        if cache.in_flight.as_ref().is_some_and(|(n, _)| *n == number) {
            cache.in_flight = None;
        }
        report
    }

    fn launch(&self, number: u64) -> Flight {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let task = tokio::spawn(async move {
            let report = engine.evaluate().await;
            let mut cache = cache.lock();
            cache.last = Some(report.clone());
            if cache.in_flight.as_ref().is_some_and(|(n, _)| *n == number) {
                cache.in_flight = None;
            }
            report
        });
        let engine = self.engine.clone();
        async move {
            match task.await {
                Ok(report) => report,
                // The evaluation task died (it cannot panic: checks and
                // listeners are isolated; but the runtime may be shutting
                // down). Its components are listed only then.
                Err(_) => {
                    let enabled: Vec<Enabled> =
                        engine.checks.checks.iter().map(|c| c.enabled).collect();
                    Arc::new(crate::report::failed(
                        &enabled,
                        "evaluation task ended early",
                    ))
                }
            }
        }
        .boxed()
        .shared()
    }

    /// The last finished evaluation's report, however old (`/health/live`
    /// reads the version from it).
    pub fn last_report(&self) -> Option<Arc<Report>> {
        self.cache.lock().last.clone()
    }

    /// Runs every check once, bounded by the deadline; never cached nor
    /// shared (the `check` command).
    pub async fn evaluate(&self) -> Arc<Report> {
        self.engine.evaluate().await
    }
}

impl Engine {
    async fn evaluate(&self) -> Arc<Report> {
        let report = Arc::new(self.checks.run(self.timeout).await);
        for listener in &self.listeners {
            // A listener's bug costs its own output (a log line, metrics),
            // never the answer or the cache.
            let heard = std::panic::catch_unwind(AssertUnwindSafe(|| listener.evaluated(&report)));
            if let Err(panic) = heard {
                tracing::error!(
                    panic = panic_message(panic.as_ref()),
                    "an evaluation listener panicked"
                );
            }
        }
        report
    }
}

impl CheckSet {
    /// Runs every check once, concurrently, bounded by `timeout`. The checks
    /// that use Postgres share one session, which is dropped as soon as the
    /// last of them is done — the pooled connection goes back to the pool
    /// then (or is discarded if a query was abandoned at the deadline), not
    /// when a slower check of another kind (an HTTPS probe) finishes.
    pub async fn run(&self, timeout: Duration) -> Report {
        let started = Instant::now();
        let deadline = started + timeout;
        let postgres = async {
            let session = self.database.as_ref().map(Database::session);
            let context = match &session {
                Some(session) => CheckContext::with_postgres(session, deadline),
                None => CheckContext::without_postgres(deadline),
            };
            self.group(true, &context, started, deadline).await
        };
        let without = CheckContext::without_postgres(deadline);
        let others = self.group(false, &without, started, deadline);
        let (mut components, rest) = join(postgres, others).await;
        components.extend(rest);
        components.sort_by_key(|(i, _)| *i);
        let components = components.into_iter().map(|(_, c)| c).collect();
        Report::new(components, SystemTime::now())
    }
}

impl CheckSet {
    /// The checks whose `uses_postgres` is `postgres`, run concurrently with
    /// `context`, each tagged with its place in report order.
    async fn group(
        &self,
        postgres: bool,
        context: &CheckContext<'_>,
        started: Instant,
        deadline: Instant,
    ) -> Vec<(usize, ComponentReport)> {
        let runs = self
            .checks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.enabled.component.uses_postgres == postgres)
            .map(|(i, c)| guarded(i, c, context, started, deadline));
        join_all(runs).await
    }
}

/// One check under the deadline, isolated: a panic inside it is a bug of
/// ours and must cost that component, not the answer or the process.
async fn guarded(
    index: usize,
    entry: &ComponentCheck,
    context: &CheckContext<'_>,
    started: Instant,
    deadline: Instant,
) -> (usize, ComponentReport) {
    let run = AssertUnwindSafe(async { entry.check.run(context).await }).catch_unwind();
    let outcome = match tokio::time::timeout_at(deadline, run).await {
        Ok(Ok(observed)) => observed.unwrap_or_else(CheckOutcome::from),
        Ok(Err(panic)) => CheckOutcome::from(Verdict::unhealthy(
            Reason::InternalError,
            format!("check panicked: {}", panic_message(panic.as_ref())),
        )),
        Err(_) => CheckOutcome::from(Verdict::unhealthy(Reason::Timeout, "deadline reached")),
    };
    let report = ComponentReport {
        enabled: entry.enabled,
        outcome,
        latency: started.elapsed(),
    };
    (index, report)
}

/// A panic's message, when it carries one (`panic!` with text does).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests;
