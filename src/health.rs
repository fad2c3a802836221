//! The evaluator: runs every enabled check concurrently under one deadline,
//! aggregates their outcomes, and caches the result.
//!
//! The cache is the flood guard (as in alexliesenfeld/health): a result
//! younger than `HEALTH_CACHE_TTL_MS` is served again, and requests that
//! arrive while an evaluation is running wait for it instead of starting
//! their own, so a burst of requests costs the database one evaluation.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::{join_all, BoxFuture, Shared};
use futures_util::FutureExt;

use crate::checks::database::DatabaseCheck;
use crate::checks::supabase::SupabaseCheck;
use crate::checks::workers::WorkersCheck;
use crate::checks::{Check, CheckOutcome, Component, Reason, Status};
use crate::db::{Database, Session};
use crate::telemetry::Redactor;

/// One component's result within a report.
#[derive(Debug, Clone)]
pub struct ComponentReport {
    pub component: Component,
    pub critical: bool,
    pub outcome: CheckOutcome,
    pub latency: Duration,
}

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    pub components: Vec<ComponentReport>,
    /// When the results were measured (shown as `checked_at`).
    pub checked_at: SystemTime,
    /// The same moment on the monotonic clock, for the cache's age.
    measured_at: Instant,
}

impl Report {
    /// A report of `components` measured at `checked_at`, status aggregated.
    pub fn new(components: Vec<ComponentReport>, checked_at: SystemTime) -> Report {
        Report {
            status: aggregate(&components),
            components,
            checked_at,
            measured_at: Instant::now(),
        }
    }

    pub fn get(&self, component: Component) -> Option<&ComponentReport> {
        self.components.iter().find(|c| c.component == component)
    }
}

/// CONTRACT §3: unhealthy if a critical component is; else degraded if any
/// component is degraded or a non-critical one is unhealthy; else healthy.
pub fn aggregate(components: &[ComponentReport]) -> Status {
    let critical_down = components
        .iter()
        .any(|c| c.critical && c.outcome.status == Status::Unhealthy);
    if critical_down {
        Status::Unhealthy
    } else if components
        .iter()
        .any(|c| c.outcome.status != Status::Healthy)
    {
        Status::Degraded
    } else {
        Status::Healthy
    }
}

/// One registered check: which component it reports, whether its failure
/// is critical, and how to run it.
pub struct Registered {
    pub component: Component,
    pub critical: bool,
    pub check: Box<dyn Check>,
}

/// The checks of this process, as data, in report order, and the database
/// pool whose connection they share within an evaluation.
pub struct Checks {
    pub registered: Vec<Registered>,
    pub database: Option<Database>,
}

impl Checks {
    /// The contract's checks for `components`: database and workers share
    /// the pool; Supabase uses its own HTTPS client.
    pub fn standard(
        components: &[Component],
        noncritical: &BTreeSet<Component>,
        database: Option<Database>,
        workers: Option<WorkersCheck>,
        supabase: Option<SupabaseCheck>,
    ) -> Self {
        let mut workers = workers;
        let mut supabase = supabase;
        let registered = components
            .iter()
            .map(|&component| {
                let check: Box<dyn Check> = match component {
                    Component::Database => Box::new(DatabaseCheck),
                    Component::Workers => match workers.take() {
                        Some(w) => Box::new(w),
                        None => Box::new(NotConfigured),
                    },
                    Component::Supabase => match supabase.take() {
                        Some(s) => Box::new(s),
                        None => Box::new(NotConfigured),
                    },
                };
                Registered {
                    component,
                    critical: !noncritical.contains(&component),
                    check,
                }
            })
            .collect();
        Self {
            registered,
            database,
        }
    }
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
        let components: Vec<Component> = self
            .probe
            .checks
            .registered
            .iter()
            .map(|r| r.component)
            .collect();
        async move {
            match task.await {
                Ok(report) => report,
                // The evaluation task died (it cannot panic: checks are
                // isolated; but the runtime may be shutting down).
                Err(_) => Arc::new(Report::failed(&components, "evaluation task ended early")),
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

impl Report {
    /// Every component unhealthy, for when no evaluation result exists.
    fn failed(components: &[Component], why: &str) -> Report {
        let components: Vec<ComponentReport> = components
            .iter()
            .map(|&component| ComponentReport {
                component,
                critical: true,
                outcome: CheckOutcome::unhealthy(Reason::QueryFailed, why),
                latency: Duration::ZERO,
            })
            .collect();
        Report::new(components, SystemTime::now())
    }
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
                    component: registered.component,
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

/// Stands in for a check whose settings are missing (configuration makes
/// this unreachable; kept so that a gap shows as `not_configured`).
struct NotConfigured;

impl Check for NotConfigured {
    fn run<'a>(&'a self, _session: Option<&'a Session<'a>>) -> BoxFuture<'a, CheckOutcome> {
        Box::pin(async {
            CheckOutcome::unhealthy(
                Reason::NotConfigured,
                "component enabled without its settings",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(component: Component, status: Status, critical: bool) -> ComponentReport {
        ComponentReport {
            component,
            critical,
            outcome: CheckOutcome {
                status,
                reason: None,
                facts: crate::checks::Facts::None,
                error: None,
            },
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn aggregation_follows_the_contract() {
        use Component::*;
        use Status::*;
        let all = |s: [Status; 3], critical: [bool; 3]| {
            aggregate(&[
                part(Database, s[0], critical[0]),
                part(Supabase, s[1], critical[1]),
                part(Workers, s[2], critical[2]),
            ])
        };
        let every = [true; 3];
        assert_eq!(all([Healthy; 3], every), Healthy);
        assert_eq!(all([Healthy, Degraded, Healthy], every), Degraded);
        assert_eq!(all([Unhealthy, Degraded, Healthy], every), Unhealthy);
        assert_eq!(
            all([Healthy, Unhealthy, Healthy], [true, false, true]),
            Degraded
        );
        assert_eq!(
            all([Healthy, Unhealthy, Unhealthy], [true, false, true]),
            Unhealthy
        );
        assert_eq!(aggregate(&[]), Healthy);
    }
}
