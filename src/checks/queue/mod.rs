//! The `queue` component (opt-in): whether MeshHook's pgmq job queues make
//! progress, not just whether workers heartbeat.
//!
//! Per queue, with the database's clock: how many messages are *ready*
//! (`vt <= now()`: never read, or read by a worker whose visibility timeout
//! ran out), how long the oldest ready one has waited, and how many messages
//! reached the queue's dead-letter queue recently.
//!
//! All queues are measured in one round trip, with unnamed statements that
//! transaction poolers accept (`statement.rs` says how a missing table is
//! kept from failing the rest). Its cost does not grow with the queue: one
//! walk of pgmq's `vt` index from its start gives the oldest ready message
//! and the count, which stops at [`CAP`]. A queue created or dropped later
//! is seen at the next evaluation.

use std::sync::Arc;

use parking_lot::Mutex;

use serde_json::{json, Map, Value};
use tokio_postgres::Row;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::{Session, Statement};
use crate::env::{list, number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, Reason, Verdict};
use crate::figures::{Figure, MetricSet, Unit};

mod statement;

pub use statement::{Measured, CAP};
use statement::{Queues, Tables};

pub const COMPONENT: Component = Component {
    name: "queue",
    enabled_by_default: false,
    critical_by_default: true,
    private: false,
    uses_postgres: true,
    read_settings: read::<QueueSettings>,
    figures: &[READY, OLDEST_READY, DEAD_LETTERS],
};

const READY: Figure = Figure {
    emf: Some("QueueReady"),
    prometheus: Some("queue_ready_messages"),
    label: Some("queue"),
    help: "Messages ready to be read now, by queue (counted up to 10000)",
    unit: Unit::Count,
};
const OLDEST_READY: Figure = Figure {
    emf: Some("QueueOldestReadySeconds"),
    prometheus: Some("queue_oldest_ready_age_seconds"),
    label: Some("queue"),
    help: "How long the oldest ready message has been waiting, by queue",
    unit: Unit::Seconds,
};
const DEAD_LETTERS: Figure = Figure {
    emf: Some("DeadLettersRecent"),
    prometheus: Some("queue_recent_dead_letters"),
    label: Some("queue"),
    help: "Messages sent to the queue's dead-letter queue within QUEUE_DEAD_LETTER_WINDOW_SECS, by queue",
    unit: Unit::Count,
};

/// pgmq's limit on a queue name's length.
const MAX_NAME: usize = 47;

/// `QUEUE_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    pub names: Vec<String>,
    pub dlq_suffix: String,
    pub degraded_after_secs: u64,
    pub unhealthy_after_secs: u64,
    pub dead_letter_window_secs: u64,
}

/// A pgmq queue name: lower-case letters, digits and `_`. Names are written
/// into the statement's text, so nothing else may pass.
fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Settings for QueueSettings {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let names = list(env.get("QUEUE_NAMES").as_deref().unwrap_or("workflow_jobs"));
        if names.is_empty() {
            return Err(ConfigError::new("QUEUE_NAMES", "names no queue"));
        }
        if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
            return Err(ConfigError::new(
                "QUEUE_NAMES",
                format!("{bad:?} is not a pgmq queue name (1 to 47 of a-z, 0-9 and _)"),
            ));
        }
        let dlq_suffix = env
            .get("QUEUE_DLQ_SUFFIX")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "_dlq".to_owned());
        if let Some(long) = names
            .iter()
            .find(|n| !valid_name(&format!("{n}{dlq_suffix}")))
        {
            return Err(ConfigError::new(
                "QUEUE_DLQ_SUFFIX",
                format!(
                    "{long:?} plus this suffix is not a pgmq queue name (1 to 47 of a-z, 0-9 and _)"
                ),
            ));
        }
        let day = 86_400;
        let degraded_after_secs = number(env, "QUEUE_DEGRADED_AFTER_SECS", 60, 1, 30 * day)?;
        let unhealthy_after_secs = number(env, "QUEUE_UNHEALTHY_AFTER_SECS", 300, 1, 30 * day)?;
        if unhealthy_after_secs < degraded_after_secs {
            return Err(ConfigError::new(
                "QUEUE_UNHEALTHY_AFTER_SECS",
                "must not be smaller than QUEUE_DEGRADED_AFTER_SECS",
            ));
        }
        let dead_letter_window_secs =
            number(env, "QUEUE_DEAD_LETTER_WINDOW_SECS", 900, 1, 30 * day)?;
        Ok(Self {
            names,
            dlq_suffix,
            degraded_after_secs,
            unhealthy_after_secs,
            dead_letter_window_secs,
        })
    }

    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        Ok(Box::new(QueueCheck {
            presence: statement::presence(&self.names, &self.dlq_suffix),
            settings: self,
            known: Mutex::default(),
        }))
    }
}

/// What one queue looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub name: String,
    /// `None`: the queue's table (or the `pgmq` schema) does not exist.
    pub measured: Option<Measured>,
}

struct QueueCheck {
    presence: Statement,
    settings: Arc<QueueSettings>,
    /// The tables that existed at the last evaluation, and the numbers
    /// statement for them.
    known: Mutex<Option<Known>>,
}

type Known = (Tables, Option<Arc<Statement>>);

impl Check for QueueCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let session = context.postgres()?;
        let known = self.known.lock().clone();
        let (tables, numbers) = match known {
            // The usual case: both statements in one round trip.
            Some((before, numbers)) => {
                let (presence, rows) = tokio::join!(
                    session.query(&self.presence),
                    query(session, numbers.as_deref())
                );
                let now = statement::read_presence(&presence?)?;
                if now == before {
                    (now, rows?)
                } else {
                    // Created or dropped since: count the tables as they are.
                    self.remeasure(session, now).await?
                }
            }
            None => {
                let now = statement::read_presence(&session.query(&self.presence).await?)?;
                self.remeasure(session, now).await?
            }
        };
        let measured = statement::read_numbers(&numbers)?;
        let states: Vec<QueueState> = self
            .settings
            .names
            .iter()
            .zip(&tables.0)
            .map(|(name, (exists, _))| QueueState {
                name: name.clone(),
                measured: exists.then(|| measured.get(name).copied()).flatten(),
            })
            .collect();
        Ok(judge_waiting_jobs(&states, &self.settings))
    }
}

impl QueueCheck {
    /// The numbers of `tables`, remembered with them for the next evaluation.
    async fn remeasure(
        &self,
        session: &Session<'_>,
        tables: Tables,
    ) -> Result<(Tables, Vec<Row>), Failure> {
        let queues = Queues {
            names: &self.settings.names,
            dlq_suffix: &self.settings.dlq_suffix,
            window_secs: self.settings.dead_letter_window_secs,
        };
        let numbers = statement::numbers(&queues, &tables).map(Arc::new);
        let rows = query(session, numbers.as_deref()).await?;
        *self.known.lock() = Some((tables.clone(), numbers));
        Ok((tables, rows))
    }
}

/// The rows of `statement`, or none when there is nothing to ask.
async fn query(session: &Session<'_>, statement: Option<&Statement>) -> Result<Vec<Row>, Failure> {
    match statement {
        Some(statement) => session.query(statement).await,
        None => Ok(Vec::new()),
    }
}

/// Per queue: table missing → unhealthy (`schema_missing`); oldest ready
/// job at or past the unhealthy threshold → unhealthy (`queue_stalled`);
/// past the degraded one → degraded (`queue_backlog`); recent dead letters
/// → degraded (`dead_letters`). The worst queue decides.
pub(crate) fn judge_waiting_jobs(states: &[QueueState], settings: &QueueSettings) -> CheckOutcome {
    let mut all = Aggregate::default();
    let mut metrics = Vec::new();
    let mut queues = Map::new();
    for state in states {
        all.add(queue_verdict(state, settings));
        if let Some(m) = state.measured {
            queues.insert(
                state.name.clone(),
                json!({
                    "ready": m.ready,
                    "oldest_ready_secs": m.oldest_ready_secs,
                    "dead_letters_recent": m.dead_letters_recent,
                }),
            );
            metrics.push(queue_metrics(&state.name, m));
        }
    }
    CheckOutcome::from(all.verdict())
        .with_facts(vec![("queues", Value::Object(queues))])
        .with_metrics(metrics)
}

/// One queue's verdict.
fn queue_verdict(state: &QueueState, settings: &QueueSettings) -> Verdict {
    let name = &state.name;
    let Some(m) = state.measured else {
        return Verdict::unhealthy(
            Reason::SchemaMissing,
            format!("pgmq queue table pgmq.q_{name} does not exist"),
        );
    };
    let waited = m.oldest_ready_secs;
    if waited >= settings.unhealthy_after_secs {
        Verdict::unhealthy(
            Reason::QueueStalled,
            format!(
                "{name}: oldest ready job waited {waited} s (unhealthy from {} s)",
                settings.unhealthy_after_secs
            ),
        )
    } else if waited >= settings.degraded_after_secs {
        Verdict::degraded(
            Reason::QueueBacklog,
            format!(
                "{name}: oldest ready job waited {waited} s (degraded from {} s)",
                settings.degraded_after_secs
            ),
        )
    } else if m.dead_letters_recent > 0 {
        Verdict::degraded(
            Reason::DeadLetters,
            format!(
                "{name}: {} dead letters in the last {} s",
                m.dead_letters_recent, settings.dead_letter_window_secs
            ),
        )
    } else {
        Verdict::healthy()
    }
}

/// One queue's figures, with its name as the `Queue` dimension.
fn queue_metrics(name: &str, m: Measured) -> MetricSet {
    MetricSet {
        dimension: ("Queue", name.to_owned()),
        values: vec![
            (&READY, m.ready as f64),
            (&OLDEST_READY, m.oldest_ready_secs as f64),
            (&DEAD_LETTERS, m.dead_letters_recent as f64),
        ],
    }
}

#[cfg(test)]
mod tests;
