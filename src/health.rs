//! The evaluator: runs every enabled check concurrently under one deadline
//! and caches the result (a [`Report`], which aggregates the outcomes).
//!
//! The cache is the flood guard (as in alexliesenfeld/health): a result
//! younger than `HEALTH_CACHE_TTL_MS` is served again, and requests that
//! arrive while an evaluation is running wait for it instead of starting
//! their own, so a burst of requests costs the database one evaluation.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::{join_all, BoxFuture, Shared};
use futures_util::FutureExt;

use crate::component::Check;
use crate::db::Database;
use crate::outcome::{CheckOutcome, Reason};
use crate::report::{ComponentReport, Report};
use crate::telemetry::Redactor;

/// One registered check: which component it reports, whether its failure
/// is critical, and how to run it.
pub struct Registered {
    pub name: &'static str,
    pub critical: bool,
    pub check: Box<dyn Check>,
}

/// The checks of this process, as data, in report order, and the database
/// pool whose connection they share within an evaluation.
pub struct Checks {
    pub registered: Vec<Registered>,
    pub database: Option<Database>,
}

pub struct Evaluator {
    probe: Arc<Probe>,
    cache_ttl: Duration,
    cache: Arc<Mutex<Cache>>,
}

/// What one evaluation needs; shared with the task that runs it.
struct Probe {
    checks: Checks,
    timeout: Duration,
    redactor: Redactor,
    /// EMF namespace when metrics are printed (Lambda mode).
    metrics_namespace: Option<String>,
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
        checks: Checks,
        timeout: Duration,
        cache_ttl: Duration,
        redactor: Redactor,
        metrics_namespace: Option<String>,
    ) -> Self {
        Self {
            probe: Arc::new(Probe {
                checks,
                timeout,
                redactor,
                metrics_namespace,
            }),
            cache_ttl,
            cache: Arc::default(),
        }
    }

    pub fn database(&self) -> Option<&Database> {
        self.probe.checks.database.as_ref()
    }

    /// A report no older than the cache TTL. Requests that arrive while an
    /// evaluation runs join it. The evaluation runs in a task of its own, so
    /// a request that goes away (a monitor that hung up) does not cancel it
    /// for the others: every waiter is answered within the deadline of the
    /// evaluation it joined.
    pub async fn report(&self) -> Arc<Report> {
        if self.cache_ttl.is_zero() {
            return Arc::new(self.probe.evaluate().await);
        }
        let (number, flight) = {
            let mut cache = lock(&self.cache);
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
        let mut cache = lock(&self.cache);
        if cache.in_flight.as_ref().is_some_and(|(n, _)| *n == number) {
            cache.in_flight = None;
        }
        report
    }

    fn launch(&self, number: u64) -> Flight {
        let probe = self.probe.clone();
        let cache = self.cache.clone();
        let task = tokio::spawn(async move {
            let report = Arc::new(probe.evaluate().await);
            let mut cache = lock(&cache);
            cache.last = Some(report.clone());
            if cache.in_flight.as_ref().is_some_and(|(n, _)| *n == number) {
                cache.in_flight = None;
            }
            report
        });
        let names: Vec<&'static str> = self
            .probe
            .checks
            .registered
            .iter()
            .map(|r| r.name)
            .collect();
        async move {
            match task.await {
                Ok(report) => report,
                // The evaluation task died (it cannot panic: checks are
                // isolated; but the runtime may be shutting down).
                Err(_) => Arc::new(crate::report::failed(&names, "evaluation task ended early")),
            }
        }
        .boxed()
        .shared()
    }

    /// Runs every check once, bounded by the deadline; never cached.
    pub async fn evaluate(&self) -> Report {
        self.probe.evaluate().await
    }
}

/// The cache lock is held for a few instructions only and nothing panics
/// under it; a poisoned lock still holds consistent data.
fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Probe {
    /// Runs every check once, bounded by the deadline; never cached.
    pub async fn evaluate(&self) -> Report {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        let session = self.checks.database.as_ref().map(Database::session);

        let runs = self.checks.registered.iter().map(|registered| {
            let check = registered.check.run(session.as_ref());
            async move {
                // A panic inside a check is a bug of ours; it must cost that
                // component, not the answer or the process.
                let guarded = AssertUnwindSafe(check).catch_unwind();
                let outcome = match tokio::time::timeout_at(deadline, guarded).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_panic)) => {
                        CheckOutcome::unhealthy(Reason::QueryFailed, "check panicked")
                    }
                    Err(_) => CheckOutcome::unhealthy(Reason::Timeout, "deadline reached"),
                };
                ComponentReport {
                    name: registered.name,
                    critical: registered.critical,
                    outcome,
                    latency: started.elapsed(),
                }
            }
        });
        let components = join_all(runs).await;
        // Dropping the session here (not later) returns the connection to
        // the pool, or discards it if a query was abandoned at the deadline.
        drop(session);

        let report = Report::new(components, SystemTime::now());
        crate::telemetry::log_evaluation(&report, &self.redactor);
        if let Some(namespace) = &self.metrics_namespace {
            crate::metrics::emit(&report, namespace);
        }
        report
    }
}
