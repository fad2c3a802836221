//! The evaluator: runs every enabled check concurrently under one deadline,
//! aggregates their outcomes, and caches the result.
//!
//! The cache is the flood guard (as in alexliesenfeld/health): a result
//! younger than `HEALTH_CACHE_TTL_MS` is served again, and requests that
//! arrive while an evaluation is running wait for it instead of starting
//! their own, so a burst of requests costs the database one evaluation.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use futures_util::FutureExt;

use crate::checks::supabase::SupabaseCheck;
use crate::checks::workers::WorkersCheck;
use crate::checks::{database, CheckOutcome, Component, Reason, Status};
use crate::db::Database;
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

/// The checks of this process, as data: which components, how to run each.
pub struct Checks {
    pub components: Vec<Component>,
    pub noncritical: BTreeSet<Component>,
    pub database: Option<Database>,
    pub workers: Option<WorkersCheck>,
    pub supabase: Option<SupabaseCheck>,
}

pub struct Evaluator {
    checks: Checks,
    timeout: Duration,
    cache_ttl: Duration,
    redactor: Redactor,
    /// Holds the last report; held for the whole of an evaluation, which is
    /// what makes concurrent requests share one evaluation.
    cache: tokio::sync::Mutex<Option<Arc<Report>>>,
    /// Counts finished evaluations, so a waiter can tell that the one it
    /// waited for has finished and take its result whatever its age.
    finished: AtomicU64,
}

type CheckFuture<'a> = Pin<Box<dyn std::future::Future<Output = CheckOutcome> + Send + 'a>>;

impl Evaluator {
    pub fn new(checks: Checks, timeout: Duration, cache_ttl: Duration, redactor: Redactor) -> Self {
        Self {
            checks,
            timeout,
            cache_ttl,
            redactor,
            cache: tokio::sync::Mutex::new(None),
            finished: AtomicU64::new(0),
        }
    }

    pub fn database(&self) -> Option<&Database> {
        self.checks.database.as_ref()
    }

    /// A report no older than the cache TTL, evaluating if needed.
    pub async fn report(&self) -> Arc<Report> {
        if self.cache_ttl.is_zero() {
            return Arc::new(self.evaluate().await);
        }
        let seen = self.finished.load(Ordering::Acquire);
        let mut cache = self.cache.lock().await;
        if let Some(report) = cache.as_ref() {
            let fresh = report.measured_at.elapsed() < self.cache_ttl;
            let just_finished = self.finished.load(Ordering::Acquire) != seen;
            if fresh || just_finished {
                return report.clone();
            }
        }
        let report = Arc::new(self.evaluate().await);
        *cache = Some(report.clone());
        self.finished.fetch_add(1, Ordering::Release);
        report
    }

    /// Runs every check once, bounded by the deadline; never cached.
    pub async fn evaluate(&self) -> Report {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        let session = self.checks.database.as_ref().map(Database::session);

        let runs = self.checks.components.iter().map(|&component| {
            let check: CheckFuture<'_> = match component {
                Component::Database => match &session {
                    Some(s) => Box::pin(database::check(s)),
                    None => Box::pin(not_configured()),
                },
                Component::Workers => match (&session, &self.checks.workers) {
                    (Some(s), Some(w)) => Box::pin(w.check(s)),
                    _ => Box::pin(not_configured()),
                },
                Component::Supabase => match &self.checks.supabase {
                    Some(s) => Box::pin(s.check()),
                    None => Box::pin(not_configured()),
                },
            };
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
                    component,
                    critical: !self.checks.noncritical.contains(&component),
                    outcome,
                    latency: started.elapsed(),
                }
            }
        });
        let components = join_all(runs).await;
        // Dropping the session here (not later) returns the connection to
        // the pool, or discards it if a query was abandoned at the deadline.
        drop(session);

        let report = Report {
            status: aggregate(&components),
            components,
            checked_at: SystemTime::now(),
            measured_at: Instant::now(),
        };
        crate::telemetry::log_evaluation(&report, &self.redactor);
        report
    }
}

async fn not_configured() -> CheckOutcome {
    CheckOutcome::unhealthy(
        Reason::NotConfigured,
        "component enabled without its settings",
    )
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
