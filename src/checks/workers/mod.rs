//! The `workers` component: one query over `monitoring.worker_heartbeats`,
//! classified with the database's clock so that the function's own clock
//! (and any skew between it and the workers) never matters. The same rows
//! tell which MeshHook version runs: the version of the most recently
//! started alive worker that reports one, and how many alive workers report
//! each version (a rollout at a glance).
//!
//! Where `migrate` has created [`FUNCTION`], the check calls it: the
//! heartbeats grouped by kind and version on the server, with a plan the
//! server keeps. The first evaluation (and every one, when the function
//! cannot be called) sends [`HEARTBEATS`] inline instead: a row per
//! heartbeat, grouped here. On a fresh server session (a cold start's first
//! answer) that statement costs 0.4–0.8 ms less than the grouping one,
//! whose aggregates, casts and `extract` the backend has to look up first
//! (BENCHMARKS.md, "Where the cold time went"); both are judged alike.

use std::sync::Arc;

use serde_json::json;
use tokio_postgres::types::Type;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::{count, Planned, Statement};
use crate::env::{number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason, Verdict, UNKNOWN_VERSION};
use crate::figures::{Figure, MetricSet, Unit};

pub const COMPONENT: Component = Component {
    name: "workers",
    enabled_by_default: true,
    critical_by_default: true,
    private: false,
    uses_postgres: true,
    read_settings: read::<WorkersSettings>,
    figures: &[ALIVE, STALE],
};

// Prometheus only: in CloudWatch each kind would be a metric to pay for,
// and the alarms watch the component's status instead.
const ALIVE: Figure = Figure {
    emf: None,
    prometheus: Some("workers_alive"),
    label: Some("kind"),
    help: "Workers whose heartbeat is fresh, by kind (those not listed in WORKER_MIN_ALIVE_BY_KIND under other)",
    unit: Unit::Count,
};
const STALE: Figure = Figure {
    emf: None,
    prometheus: Some("workers_stale"),
    label: Some("kind"),
    help: "Workers whose heartbeat is stale but not yet forgotten, by kind (as workers_alive)",
    unit: Unit::Count,
};

/// The `kind` under which workers of a kind the settings do not list are
/// counted: label values come from configuration, never from a row.
pub const OTHER_KINDS: &str = "other";

/// How worker heartbeats are classified (`docs/CONFIGURATION.md`, "Workers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkersSettings {
    pub stale_after_secs: u64,
    pub forget_after_secs: u64,
    pub min_alive: u64,
    pub min_alive_by_kind: Vec<(String, u64)>,
}

impl Default for WorkersSettings {
    fn default() -> Self {
        Self {
            stale_after_secs: 60,
            forget_after_secs: 900,
            min_alive: 1,
            min_alive_by_kind: Vec::new(),
        }
    }
}

impl Settings for WorkersSettings {
    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        // The same parameters for the statement and the function.
        let bound = |sql: &'static str| {
            Statement::new(sql)
                .bind(self.stale_after_secs as f64, Type::FLOAT8)
                .bind(self.forget_after_secs as f64, Type::FLOAT8)
        };
        Ok(Box::new(WorkersCheck {
            heartbeats: bound(HEARTBEATS),
            grouped: Planned::new(
                FUNCTION,
                bound("SELECT * FROM monitoring.worker_readings_v1($1, $2)"),
            ),
            settings: self,
        }))
    }

    /// `WORKER_*` → thresholds.
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let stale_after_secs = number(env, "WORKER_STALE_AFTER_SECS", 60, 1, 86_400 * 30)?;
        let forget_after_secs = number(env, "WORKER_FORGET_AFTER_SECS", 900, 1, 86_400 * 365)?;
        if forget_after_secs < stale_after_secs {
            return Err(ConfigError::new(
                "WORKER_FORGET_AFTER_SECS",
                "must not be smaller than WORKER_STALE_AFTER_SECS",
            ));
        }
        let min_alive = number(env, "WORKER_MIN_ALIVE", 1, 0, 1_000_000)?;
        let mut min_alive_by_kind = Vec::new();
        if let Some(list) = env.get("WORKER_MIN_ALIVE_BY_KIND") {
            for entry in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let parsed = entry.split_once('=').and_then(|(kind, n)| {
                    let kind = kind.trim();
                    let n = n.trim().parse::<u64>().ok()?;
                    (!kind.is_empty()).then(|| (kind.to_owned(), n))
                });
                let Some(pair) = parsed else {
                    return Err(ConfigError::new(
                        "WORKER_MIN_ALIVE_BY_KIND",
                        format!("expected kind=number pairs such as orchestrator=1,http-exec=2; got {entry:?}"),
                    ));
                };
                min_alive_by_kind.push(pair);
            }
        }
        Ok(WorkersSettings {
            stale_after_secs,
            forget_after_secs,
            min_alive,
            min_alive_by_kind,
        })
    }

}

/// The function `migrate` creates (migrations/0005) to run [`STATEMENT`]
/// with a plan the server keeps ([`Planned`]).
pub const FUNCTION: &str = "monitoring.worker_readings_v1(double precision, double precision)";

/// A row per heartbeat not yet forgotten: its kind, its reported version,
/// whether it is alive, and when its worker started, with the database's
/// clock; [`heartbeat_groups`] groups them as [`STATEMENT`] does. The
/// thresholds are its parameters, in seconds: `$1` stale after, `$2`
/// forgotten after.
const HEARTBEATS: &str = "SELECT kind, version, last_seen_at >= now() - $1 * interval '1 second', \
        started_at \
     FROM monitoring.worker_heartbeats \
     WHERE last_seen_at >= now() - $2 * interval '1 second'";

/// [`FUNCTION`]'s statement: a row per worker kind and reported version,
/// alive and stale counts and when the newest alive one started, with the
/// database's clock; the parameters are [`HEARTBEATS`]'.
#[cfg(any(test, feature = "test-seams"))]
const STATEMENT: &str = "SELECT kind, nullif(version, ''), \
        count(*) FILTER (WHERE last_seen_at >= now() - $1 * interval '1 second'), \
        count(*) FILTER (WHERE last_seen_at < now() - $1 * interval '1 second'), \
        extract(epoch FROM max(started_at) \
            FILTER (WHERE last_seen_at >= now() - $1 * interval '1 second'))::float8 \
     FROM monitoring.worker_heartbeats \
     WHERE last_seen_at >= now() - $2 * interval '1 second' \
     GROUP BY 1, 2";

/// Alive and stale heartbeats of one worker kind and reported version.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatGroup {
    pub kind: String,
    /// `None`: the rows report no version (NULL or empty).
    pub version: Option<String>,
    pub alive: u64,
    pub stale: u64,
    /// When the most recently started alive worker of the group started
    /// (seconds since the epoch, database clock); `None` when none is alive.
    pub newest_alive_start: Option<f64>,
}

impl HeartbeatGroup {
    /// One row of [`STATEMENT`], by type.
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            kind: row.try_get(0)?,
            version: row.try_get(1)?,
            alive: count(row, 2)?,
            stale: count(row, 3)?,
            newest_alive_start: row.try_get(4)?,
        })
    }
}

/// Rows of [`HEARTBEATS`] grouped by kind and reported version (an empty
/// version is none), as [`STATEMENT`] groups them.
fn heartbeat_groups(
    rows: &[tokio_postgres::Row],
) -> Result<Vec<HeartbeatGroup>, tokio_postgres::Error> {
    // The newest alive start of each group, in the row's microseconds.
    let mut groups: Vec<(HeartbeatGroup, Option<i64>)> = Vec::new();
    for row in rows {
        let kind: String = row.try_get(0)?;
        let version = row.try_get::<_, Option<String>>(1)?.filter(|v| !v.is_empty());
        let alive: bool = row.try_get(2)?;
        let started: Timestamptz = row.try_get(3)?;
        let at = match groups
            .iter()
            .position(|(g, _)| g.kind == kind && g.version == version)
        {
            Some(at) => at,
            None => {
                let group = HeartbeatGroup {
                    kind,
                    version,
                    alive: 0,
                    stale: 0,
                    newest_alive_start: None,
                };
                groups.push((group, None));
                groups.len() - 1
            }
        };
        let (group, newest) = &mut groups[at];
        if alive {
            group.alive += 1;
            *newest = (*newest).max(Some(started.0));
        } else {
            group.stale += 1;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(mut group, newest)| {
            group.newest_alive_start = newest.map(epoch_seconds);
            group
        })
        .collect())
}

/// The groups on `client` both ways, sorted (a test seam: the tests keep
/// them equal on a real server): [`HEARTBEATS`] grouped here, and
/// [`STATEMENT`] (the function's) sent as a statement of its own.
#[cfg(feature = "test-seams")]
pub async fn groups_both_ways(
    client: &tokio_postgres::Client,
    stale_after_secs: f64,
    forget_after_secs: f64,
) -> Result<(Vec<HeartbeatGroup>, Vec<HeartbeatGroup>), tokio_postgres::Error> {
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] = [
        (&stale_after_secs, Type::FLOAT8),
        (&forget_after_secs, Type::FLOAT8),
    ];
    let mut inline = heartbeat_groups(&client.query_typed(HEARTBEATS, &params).await?)?;
    let mut grouped = client
        .query_typed(STATEMENT, &params)
        .await?
        .iter()
        .map(HeartbeatGroup::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for groups in [&mut inline, &mut grouped] {
        groups.sort_by(|a, b| (&a.kind, &a.version).cmp(&(&b.kind, &b.version)));
    }
    Ok((inline, grouped))
}

/// A `timestamptz` as Postgres sends it: microseconds since 2000-01-01 UTC
/// (`i64::MAX` and `i64::MIN` are `infinity` and `-infinity`).
struct Timestamptz(i64);

impl<'a> tokio_postgres::types::FromSql<'a> for Timestamptz {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(i64::from_be_bytes(raw.try_into()?)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

/// Seconds since the Unix epoch of a `timestamptz`'s microseconds, as
/// `extract(epoch FROM …)::float8` gives them: the exact decimal, rounded
/// once to the nearest double.
fn epoch_seconds(micros: i64) -> f64 {
    /// Seconds from 1970-01-01 to 2000-01-01.
    const Y2K: i64 = 946_684_800;
    match micros {
        i64::MAX => f64::INFINITY,
        i64::MIN => f64::NEG_INFINITY,
        _ => {
            let since_epoch = i128::from(micros) + i128::from(Y2K) * 1_000_000;
            let sign = if since_epoch < 0 { "-" } else { "" };
            let (whole, fraction) = (since_epoch.abs() / 1_000_000, since_epoch.abs() % 1_000_000);
            format!("{sign}{whole}.{fraction:06}")
                .parse()
                .unwrap_or(f64::NAN)
        }
    }
}

struct WorkersCheck {
    /// [`HEARTBEATS`], sent inline on the first evaluation.
    heartbeats: Statement,
    /// The heartbeats grouped by [`FUNCTION`], when it can be called.
    grouped: Planned,
    settings: Arc<WorkersSettings>,
}

impl Check for WorkersCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let session = context.postgres()?;
        let unexpected = |_| Failure::new(Reason::BadResponse, "unexpected heartbeat row");
        let inline = async {
            heartbeat_groups(&session.query(&self.heartbeats).await?).map_err(unexpected)
        };
        let from_function = |rows: Vec<tokio_postgres::Row>| {
            rows.iter()
                .map(HeartbeatGroup::from_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(unexpected)
        };
        let groups = self.grouped.read(session, inline, from_function).await?;
        Ok(judge_heartbeats(&groups, &self.settings))
    }
}

/// Too few alive (in total or of a listed kind) → unhealthy;
/// else any stale → degraded; else healthy. The reported MeshHook version
/// is that of the most recently started alive worker that reports one.
pub(crate) fn judge_heartbeats(groups: &[HeartbeatGroup], settings: &WorkersSettings) -> CheckOutcome {
    let alive: u64 = groups.iter().map(|g| g.alive).sum();
    let stale: u64 = groups.iter().map(|g| g.stale).sum();
    CheckOutcome {
        verdict: heartbeat_verdict(groups, settings, alive, stale),
        facts: vec![
            ("alive", json!(alive)),
            ("stale", json!(stale)),
            ("min_alive", json!(settings.min_alive)),
            ("versions", versions(groups)),
        ],
        metrics: by_kind(groups, settings),
        meshhook_version: newest_version(groups),
    }
}

/// Alive and stale workers of each kind `WORKER_MIN_ALIVE_BY_KIND` lists
/// (zero when none heartbeats), then of every other kind together under
/// [`OTHER_KINDS`] — which a listed kind of that name shares.
fn by_kind(groups: &[HeartbeatGroup], settings: &WorkersSettings) -> Vec<MetricSet> {
    let mut listed: Vec<(&str, u64, u64)> = Vec::new();
    for (kind, _) in &settings.min_alive_by_kind {
        if kind != OTHER_KINDS && !listed.iter().any(|(k, ..)| k == kind) {
            listed.push((kind, 0, 0));
        }
    }
    let mut other = (OTHER_KINDS, 0, 0);
    for group in groups {
        let entry = match listed.iter_mut().find(|(k, ..)| *k == group.kind) {
            Some(entry) => entry,
            None => &mut other,
        };
        entry.1 += group.alive;
        entry.2 += group.stale;
    }
    listed
        .into_iter()
        .chain([other])
        .map(|(kind, alive, stale)| MetricSet {
            dimension: ("Kind", kind.to_owned()),
            values: vec![(&ALIVE, alive as f64), (&STALE, stale as f64)],
        })
        .collect()
}

fn heartbeat_verdict(
    groups: &[HeartbeatGroup],
    settings: &WorkersSettings,
    alive: u64,
    stale: u64,
) -> Verdict {
    let alive_of_kind = |kind: &str| -> u64 {
        groups
            .iter()
            .filter(|g| g.kind == kind)
            .map(|g| g.alive)
            .sum()
    };
    let short_kind = settings
        .min_alive_by_kind
        .iter()
        .find(|(kind, min)| alive_of_kind(kind) < *min);
    if alive < settings.min_alive {
        let text = format!("{alive} workers alive, {} required", settings.min_alive);
        Verdict::unhealthy(Reason::TooFewWorkers, text)
    } else if let Some((kind, min)) = short_kind {
        let text = format!("fewer than {min} workers of kind {kind:?} alive");
        Verdict::unhealthy(Reason::TooFewWorkers, text)
    } else if stale > 0 {
        Verdict::degraded(Reason::StaleWorkers, format!("{stale} workers stale"))
    } else {
        Verdict::healthy()
    }
}

/// Alive workers counted by the version they report.
fn versions(groups: &[HeartbeatGroup]) -> serde_json::Value {
    let mut versions = serde_json::Map::new();
    for group in groups.iter().filter(|g| g.alive > 0) {
        let name = group.version.as_deref().unwrap_or(UNKNOWN_VERSION);
        let count = versions.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
        versions.insert(name.to_owned(), json!(count + group.alive));
    }
    serde_json::Value::Object(versions)
}

/// The version of the most recently started alive worker that reports one.
fn newest_version(groups: &[HeartbeatGroup]) -> Option<String> {
    groups
        .iter()
        .filter(|g| g.version.is_some())
        .filter_map(|g| Some((g.newest_alive_start?, g)))
        .max_by(|(a, _), (b, _)| a.total_cmp(b))
        .and_then(|(_, g)| g.version.clone())
}

#[cfg(test)]
mod tests;
