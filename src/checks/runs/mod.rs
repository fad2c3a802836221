//! The `runs` component (opt-in): whether MeshHook's work makes progress.
//!
//! MeshHook records every workflow run in `workflow_runs` and every step in
//! the event log `workflow_events`. Whatever carries the jobs (an in-process
//! bus today, pgmq tomorrow), a run that stops producing events is stuck,
//! and a MeshHook whose runs all stopped is down even while every process
//! heartbeats.
//!
//! MeshHook protects both tables with row-level security, so a
//! least-privilege role would see no rows and read "nothing stuck" forever.
//! The measurement therefore runs inside `monitoring.runs_progress()`, a
//! `SECURITY DEFINER` function that `meshhook-health migrate` creates as
//! the tables' owner; the health role needs only `EXECUTE` on it and sees
//! aggregates, never a row. The function also says whether row-level
//! security still filters what *it* reads (`rows_hidden`: migrate was run by
//! a role that does not own the tables), so an empty view never reads
//! healthy.
//!
//! One unnamed statement per evaluation (pooler-safe, typed rows), the
//! database's clock. Its cost is flat in finished runs and in the size of
//! the event log: running runs come from the status index, each one's
//! latest event from the per-partition `(run_id, ts)` index, and partitions
//! older than the lookback are pruned (a run's events are never older than
//! the run).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio_postgres::types::Type;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::names::check_table_name;
use crate::db::{count, Statement};
use crate::env::{number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason, Verdict};
use crate::figures::{Figure, MetricSet, Unit};

pub const COMPONENT: Component = Component {
    name: "runs",
    enabled_by_default: false,
    critical_by_default: true,
    private: false,
    uses_postgres: true,
    read_settings: read::<RunsSettings>,
    figures: &[IN_FLIGHT, STALLED, OLDEST_STALLED],
};

const IN_FLIGHT: Figure = Figure {
    emf: Some("RunsInFlight"),
    prometheus: Some("runs_in_flight"),
    label: None,
    help: "Runs running and started within RUNS_LOOKBACK_SECS",
    unit: Unit::Count,
};
const STALLED: Figure = Figure {
    emf: Some("RunsStalled"),
    prometheus: Some("runs_stalled"),
    label: None,
    help: "Runs in flight whose last progress is at least RUNS_STALLED_AFTER_SECS old",
    unit: Unit::Count,
};
const OLDEST_STALLED: Figure = Figure {
    emf: Some("RunsOldestStalledSeconds"),
    prometheus: Some("runs_oldest_stalled_age_seconds"),
    label: None,
    help: "Time since the last progress of the longest-stalled run (0 when none is stalled)",
    unit: Unit::Seconds,
};

/// Most in-flight runs the function looks at (its `limit` in
/// migrations/0002_runs_progress.sql, which a test keeps equal to this):
/// counts stop there, so `RUNS_UNHEALTHY_MIN_STALLED` may not exceed it.
pub const CAP: u64 = 10_000;

/// The function the check calls and `migrate` creates.
pub const FUNCTION: &str = "monitoring.runs_progress(integer, integer)";

/// The two tables, as configured (optionally `schema.`-qualified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsTables {
    pub runs: String,
    pub events: String,
}

impl RunsTables {
    /// `RUNS_TABLE` and `RUNS_EVENTS_TABLE`; also read by `migrate`.
    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let table = |variable: &'static str, default: &str| {
            let name = env
                .get(variable)
                .map_or_else(|| default.to_owned(), |v| v.trim().to_owned());
            check_table_name(variable, &name).map(|()| name)
        };
        Ok(Self {
            runs: table("RUNS_TABLE", "workflow_runs")?,
            events: table("RUNS_EVENTS_TABLE", "workflow_events")?,
        })
    }

    /// The function's SQL, with unqualified names placed in `schema` (the
    /// migrating session's current schema): a `SECURITY DEFINER` function
    /// must not resolve names on a search path.
    pub fn migration(&self, schema: &str) -> String {
        let qualify = |name: &str| {
            if name.contains('.') {
                name.to_owned()
            } else {
                format!("{schema}.{name}")
            }
        };
        MIGRATION
            .replace("public.workflow_runs", &qualify(&self.runs))
            .replace("public.workflow_events", &qualify(&self.events))
    }

    /// Whether `reported` (the qualified name the function reads) is the
    /// configured `configured` (qualified or not).
    fn same(configured: &str, reported: &str) -> bool {
        configured == reported
            || (!configured.contains('.')
                && reported.rsplit_once('.').map(|(_, t)| t) == Some(configured))
    }
}

/// The function's SQL for the default tables in `public`; `migrate` puts
/// the configured tables in their place. Shipped as a file for other
/// migration tools.
pub const MIGRATION: &str = include_str!("../../../migrations/0002_runs_progress.sql");

/// `RUNS_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsSettings {
    pub tables: RunsTables,
    pub stalled_after_secs: u64,
    pub lookback_secs: u64,
    pub unhealthy_min_stalled: u64,
}

impl Settings for RunsSettings {
    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        Ok(Box::new(RunsCheck {
            statement: statement(&self),
            settings: self,
        }))
    }

    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let tables = RunsTables::from_source(env)?;
        let stalled_after_secs = number(env, "RUNS_STALLED_AFTER_SECS", 300, 1, 7 * 86_400)?;
        let lookback_secs = number(env, "RUNS_LOOKBACK_SECS", 86_400, 60, 366 * 86_400)?;
        if lookback_secs < stalled_after_secs {
            return Err(ConfigError::new(
                "RUNS_LOOKBACK_SECS",
                "must be at least RUNS_STALLED_AFTER_SECS (a run is looked at for longer than it takes to stall)",
            ));
        }
        let unhealthy_min_stalled = number(env, "RUNS_UNHEALTHY_MIN_STALLED", 3, 1, CAP)?;
        Ok(Self {
            tables,
            stalled_after_secs,
            lookback_secs,
            unhealthy_min_stalled,
        })
    }

}

/// The function's one call, its two thresholds as parameters (both
/// bounded well below `i32::MAX` by the settings).
fn statement(settings: &RunsSettings) -> Statement {
    let int4 = |secs: u64| i32::try_from(secs).unwrap_or(i32::MAX);
    Statement::new("SELECT * FROM monitoring.runs_progress($1, $2)")
        .bind(int4(settings.stalled_after_secs), Type::INT4)
        .bind(int4(settings.lookback_secs), Type::INT4)
}

/// What the function reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub in_flight: u64,
    pub stalled: u64,
    pub oldest_stalled_secs: u64,
    pub last_progress_secs: Option<u64>,
    pub rows_hidden: bool,
}

struct RunsCheck {
    statement: Statement,
    settings: Arc<RunsSettings>,
}

impl Check for RunsCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let rows = context
            .postgres()?
            .query(&self.statement)
            .await
            .map_err(|mut failure| {
                if failure.reason == Reason::SchemaMissing {
                    failure.message = format!(
                        "{} (the runs tables or {FUNCTION} are missing; run `meshhook-health migrate`)",
                        failure.message
                    );
                }
                failure
            })?;
        let row = rows
            .first()
            .ok_or_else(|| Failure::new(Reason::BadResponse, "runs_progress returned no row"))?;
        let unexpected = |_| Failure::new(Reason::BadResponse, "unexpected runs_progress row");
        let (runs, events): (String, String) = (
            row.try_get(0).map_err(unexpected)?,
            row.try_get(1).map_err(unexpected)?,
        );
        let tables = &self.settings.tables;
        if !RunsTables::same(&tables.runs, &runs) || !RunsTables::same(&tables.events, &events) {
            return Err(Failure::new(
                Reason::NotConfigured,
                format!(
                    "{FUNCTION} reads {runs} and {events}, not RUNS_TABLE={} and RUNS_EVENTS_TABLE={}; \
                     run `meshhook-health migrate` with these settings",
                    tables.runs, tables.events
                ),
            ));
        }
        let progress = Progress::from_row(row).map_err(unexpected)?;
        Ok(judge_progress(&progress, &self.settings))
    }
}

impl Progress {
    /// The function's counts, by type (its `returns table` columns 2–6).
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        let last: Option<i64> = row.try_get(5)?;
        Ok(Self {
            in_flight: count(row, 2)?,
            stalled: count(row, 3)?,
            oldest_stalled_secs: count(row, 4)?,
            last_progress_secs: last.map(|n| u64::try_from(n).unwrap_or(0)),
            rows_hidden: row.try_get(6)?,
        })
    }
}

/// Rows hidden → unhealthy (`rows_hidden`); at least
/// `RUNS_UNHEALTHY_MIN_STALLED` stalled and nothing in flight moving →
/// unhealthy (`engine_stalled`); any stalled → degraded (`runs_stalled`);
/// else healthy.
pub(crate) fn judge_progress(progress: &Progress, settings: &RunsSettings) -> CheckOutcome {
    if progress.rows_hidden {
        // What a filtered view counts is not the truth: no facts, no metrics.
        return Verdict::unhealthy(
            Reason::RowsHidden,
            format!(
                "row-level security filters what {FUNCTION} reads: its owner must own {} and {} \
                 (run `meshhook-health migrate` as the tables' owner)",
                settings.tables.runs, settings.tables.events
            ),
        )
        .into();
    }
    let p = progress;
    let verdict = if p.stalled >= settings.unhealthy_min_stalled && p.stalled == p.in_flight {
        Verdict::unhealthy(
            Reason::EngineStalled,
            format!(
                "all {} in-flight runs stalled (oldest for {} s)",
                p.in_flight, p.oldest_stalled_secs
            ),
        )
    } else if p.stalled > 0 {
        Verdict::degraded(
            Reason::RunsStalled,
            format!(
                "{} of {} in-flight runs stalled (oldest for {} s)",
                p.stalled, p.in_flight, p.oldest_stalled_secs
            ),
        )
    } else {
        Verdict::healthy()
    };
    let facts = vec![
        ("in_flight", json!(p.in_flight)),
        ("stalled", json!(p.stalled)),
        ("oldest_stalled_secs", json!(p.oldest_stalled_secs)),
        (
            "last_progress_secs",
            p.last_progress_secs.map_or(Value::Null, |s| json!(s)),
        ),
    ];
    let metrics = vec![MetricSet {
        dimension: ("Component", "runs".to_owned()),
        values: vec![
            (&IN_FLIGHT, p.in_flight as f64),
            (&STALLED, p.stalled as f64),
            (&OLDEST_STALLED, p.oldest_stalled_secs as f64),
        ],
    }];
    CheckOutcome::from(verdict).with_facts(facts).with_metrics(metrics)
}

#[cfg(test)]
mod tests;
