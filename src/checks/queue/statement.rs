//! The queue component's statements and their typed rows.
//!
//! A statement that names a missing table fails as a whole, and a listed
//! queue may not exist (yet) while its dead-letter queue may never. So the
//! check asks two things, pipelined on the evaluation's connection (one
//! round trip): which tables exist now ([`presence`], catalog look-ups
//! over the table names as a parameter), and the numbers of the tables
//! that existed at the previous evaluation ([`numbers`], whose `FROM`
//! names the validated tables — a table cannot be a parameter — and whose
//! window and cap are parameters). When the tables changed, the numbers
//! are asked again for the tables as they are: a second round trip, once
//! per change.

use std::collections::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::Row;

use crate::db::{count, Statement};
use crate::failure::Failure;
use crate::outcome::Reason;

/// Counting ready messages and recent dead letters stops here.
pub const CAP: u64 = 10_000;

/// What one existing queue's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub ready: u64,
    pub oldest_ready_secs: u64,
    pub dead_letters_recent: u64,
}

/// Whether each listed queue's table and its dead-letter queue's exist, in
/// `QUEUE_NAMES` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tables(pub Vec<(bool, bool)>);

/// One row, one column: whether each table exists, each queue's table then
/// its dead-letter queue's, in `QUEUE_NAMES` order.
pub(super) fn presence(names: &[String], dlq_suffix: &str) -> Statement {
    let tables: Vec<String> = names
        .iter()
        .flat_map(|name| [format!("pgmq.q_{name}"), format!("pgmq.q_{name}{dlq_suffix}")])
        .collect();
    Statement::new(
        "SELECT array_agg(to_regclass(t) IS NOT NULL ORDER BY n) \
         FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n)",
    )
    .bind(tables, Type::TEXT_ARRAY)
}

/// The queues and what their numbers ask: validated names (a-z, 0-9, _,
/// so they go into the text as written), the dead-letter suffix, and the
/// dead-letter window in seconds.
pub(super) struct Queues<'a> {
    pub names: &'a [String],
    pub dlq_suffix: &'a str,
    pub window_secs: u64,
}

/// A row per queue whose table exists: its name, how many messages are
/// ready (counted up to `$2`, [`CAP`]), how long the oldest ready one has
/// waited, and the dead letters of the last `$1` seconds (among the newest
/// [`CAP`]: msg_id grows with enqueued_at, so no full scan). `None` when no
/// table exists.
pub(super) fn numbers(queues: &Queues<'_>, tables: &Tables) -> Option<Statement> {
    let rows: Vec<String> = queues
        .names
        .iter()
        .zip(&tables.0)
        .filter(|(_, (queue, _))| *queue)
        .map(|(name, (_, dlq))| {
            let dead = if *dlq {
                format!(
                    "(SELECT count(*) FROM (SELECT enqueued_at FROM pgmq.q_{name}{suffix} \
                     ORDER BY msg_id DESC LIMIT $2) d \
                     WHERE enqueued_at >= now() - $1 * interval '1 second')",
                    suffix = queues.dlq_suffix
                )
            } else {
                "0::bigint".to_owned()
            };
            // One walk of pgmq's `vt` index gives both the count and,
            // as its first row, the oldest.
            format!(
                "SELECT '{name}'::text, count(*), \
                 coalesce(floor(extract(epoch FROM now() - min(vt)))::bigint, 0), {dead} \
                 FROM (SELECT vt FROM pgmq.q_{name} WHERE vt <= now() ORDER BY vt LIMIT $2) r"
            )
        })
        .collect();
    (!rows.is_empty()).then(|| {
        Statement::new(rows.join(" UNION ALL "))
            .bind(queues.window_secs as f64, Type::FLOAT8)
            .bind(CAP as i64, Type::INT8)
    })
}

/// The presence row.
pub(super) fn read_presence(rows: &[Row]) -> Result<Tables, Failure> {
    let row = rows.first().ok_or_else(|| unexpected("no row"))?;
    let exists: Vec<bool> = row.try_get(0).map_err(unexpected)?;
    let pairs = exists.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect();
    Ok(Tables(pairs))
}

/// The numbers rows, by queue name.
pub(super) fn read_numbers(rows: &[Row]) -> Result<HashMap<String, Measured>, Failure> {
    rows.iter()
        .map(|row| {
            let measured = Measured {
                ready: count(row, 1)?,
                oldest_ready_secs: count(row, 2)?,
                dead_letters_recent: count(row, 3)?,
            };
            Ok((row.try_get(0)?, measured))
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(unexpected)
}

fn unexpected(_: impl std::fmt::Display) -> Failure {
    Failure::new(Reason::BadResponse, "unexpected queue row")
}
