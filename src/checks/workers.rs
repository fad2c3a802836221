//! The `workers` component: one aggregate query over
//! `monitoring.worker_heartbeats`, classified with the database's clock so
//! that the function's own clock (and any skew between it and the workers)
//! never matters.

use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_postgres::SimpleQueryMessage;

use crate::component::{BuildContext, Check, CheckContext, Component, Settings, StartupError};
use crate::env::{number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason, Status};

pub const COMPONENT: Component = Component {
    name: "workers",
    enabled_by_default: true,
    uses_postgres: true,
    read_settings,
};

/// How worker heartbeats are classified (`docs/CONFIGURATION.md`, "Workers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerThresholds {
    pub stale_after_secs: u64,
    pub forget_after_secs: u64,
    pub min_alive: u64,
    pub min_alive_by_kind: Vec<(String, u64)>,
}

impl Default for WorkerThresholds {
    fn default() -> Self {
        Self {
            stale_after_secs: 60,
            forget_after_secs: 900,
            min_alive: 1,
            min_alive_by_kind: Vec::new(),
        }
    }
}

impl Settings for WorkerThresholds {
    fn build(&self, _context: &BuildContext) -> Result<Box<dyn Check>, StartupError> {
        Ok(Box::new(WorkersCheck::new(self.clone())))
    }
}

fn read_settings(env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(thresholds(env)?))
}

/// `WORKER_*` → thresholds.
pub fn thresholds(env: &dyn Source) -> Result<WorkerThresholds, ConfigError> {
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
    Ok(WorkerThresholds {
        stale_after_secs,
        forget_after_secs,
        min_alive,
        min_alive_by_kind,
    })
}

/// Alive and stale heartbeats of one worker kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCount {
    pub kind: String,
    pub alive: u64,
    pub stale: u64,
}

pub struct WorkersCheck {
    sql: String,
    thresholds: WorkerThresholds,
}

impl WorkersCheck {
    pub fn new(thresholds: WorkerThresholds) -> Self {
        // The thresholds are integers from our own configuration, so they are
        // written into the text: the statement then needs no parameters and
        // runs with the simple protocol, which transaction poolers accept.
        let sql = format!(
            "SELECT kind, \
                count(*) FILTER (WHERE last_seen_at >= now() - interval '{stale} seconds'), \
                count(*) FILTER (WHERE last_seen_at < now() - interval '{stale} seconds') \
             FROM monitoring.worker_heartbeats \
             WHERE last_seen_at >= now() - interval '{forget} seconds' \
             GROUP BY kind",
            stale = thresholds.stale_after_secs,
            forget = thresholds.forget_after_secs,
        );
        Self { sql, thresholds }
    }

    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let messages = context.postgres()?.simple_query(&self.sql).await?;
        let mut counts = Vec::new();
        for message in &messages {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            let number = |i| row.get(i).and_then(|v: &str| v.parse::<u64>().ok());
            match (row.get(0), number(1), number(2)) {
                (Some(kind), Some(alive), Some(stale)) => counts.push(KindCount {
                    kind: kind.to_owned(),
                    alive,
                    stale,
                }),
                _ => return Err(Failure::new(Reason::BadResponse, "unexpected heartbeat row")),
            }
        }
        Ok(classify(&counts, &self.thresholds))
    }
}

impl Check for WorkersCheck {
    fn run<'a>(&'a self, context: &'a CheckContext<'a>) -> BoxFuture<'a, CheckOutcome> {
        Box::pin(async move { self.observe(context).await.unwrap_or_else(CheckOutcome::from) })
    }
}

/// Too few alive (in total or of a listed kind) → unhealthy;
/// else any stale → degraded; else healthy.
pub fn classify(counts: &[KindCount], thresholds: &WorkerThresholds) -> CheckOutcome {
    let alive: u64 = counts.iter().map(|c| c.alive).sum();
    let stale: u64 = counts.iter().map(|c| c.stale).sum();
    let facts = vec![
        ("alive", json!(alive)),
        ("stale", json!(stale)),
        ("min_alive", json!(thresholds.min_alive)),
    ];
    let short_kind = thresholds.min_alive_by_kind.iter().find(|(kind, min)| {
        let alive_of_kind = counts
            .iter()
            .find(|c| &c.kind == kind)
            .map_or(0, |c| c.alive);
        alive_of_kind < *min
    });
    let (status, reason, error) = if alive < thresholds.min_alive {
        (
            Status::Unhealthy,
            Some(Reason::TooFewWorkers),
            Some(format!(
                "{alive} workers alive, {} required",
                thresholds.min_alive
            )),
        )
    } else if let Some((kind, min)) = short_kind {
        (
            Status::Unhealthy,
            Some(Reason::TooFewWorkers),
            Some(format!("fewer than {min} workers of kind {kind:?} alive")),
        )
    } else if stale > 0 {
        (
            Status::Degraded,
            Some(Reason::StaleWorkers),
            Some(format!("{stale} workers stale")),
        )
    } else {
        (Status::Healthy, None, None)
    };
    CheckOutcome {
        status,
        reason,
        facts,
        metrics: Vec::new(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(kind: &str, alive: u64, stale: u64) -> KindCount {
        KindCount {
            kind: kind.into(),
            alive,
            stale,
        }
    }

    #[test]
    fn classification_follows_the_documented_rules() {
        let t = WorkerThresholds::default();
        assert_eq!(
            classify(&[kind("worker", 2, 0)], &t).status,
            Status::Healthy
        );
        let stale = classify(&[kind("worker", 2, 1)], &t);
        assert_eq!(
            (stale.status, stale.reason),
            (Status::Degraded, Some(Reason::StaleWorkers))
        );
        let none = classify(&[], &t);
        assert_eq!(
            (none.status, none.reason),
            (Status::Unhealthy, Some(Reason::TooFewWorkers))
        );
        let zero_needed = WorkerThresholds {
            min_alive: 0,
            ..WorkerThresholds::default()
        };
        assert_eq!(classify(&[], &zero_needed).status, Status::Healthy);
        let by_kind = WorkerThresholds {
            min_alive_by_kind: vec![("orchestrator".into(), 1)],
            ..WorkerThresholds::default()
        };
        let short = classify(
            &[kind("http-exec", 3, 0), kind("orchestrator", 0, 1)],
            &by_kind,
        );
        assert_eq!(
            (short.status, short.reason),
            (Status::Unhealthy, Some(Reason::TooFewWorkers))
        );
        assert_eq!(
            short.facts,
            [
                ("alive", json!(3)),
                ("stale", json!(1)),
                ("min_alive", json!(1))
            ]
        );
    }

    #[test]
    fn thresholds_parse_per_kind_minimums() {
        let env: std::collections::HashMap<String, String> = [(
            "WORKER_MIN_ALIVE_BY_KIND".to_owned(),
            "orchestrator=1, http-exec=2".to_owned(),
        )]
        .into();
        assert_eq!(
            thresholds(&env).unwrap().min_alive_by_kind,
            [("orchestrator".to_owned(), 1), ("http-exec".to_owned(), 2)]
        );
    }
}
