//! The queue component's statements and their typed rows.
//!
//! A statement that names a missing table fails as a whole, and a listed
//! queue may not exist (yet) while its dead-letter queue may never. So the
//! check asks two things, pipelined on the evaluation's connection (one
//! round trip): which tables exist now ([`QueueSettings::presence`], catalog
//! look-ups only), and the numbers of the tables that existed at the
//! previous evaluation ([`QueueSettings::numbers`], built here from the
//! validated names). When the tables changed, the numbers are asked again
//! for the tables as they are: a second round trip, once per change.

use std::collections::HashMap;

use tokio_postgres::Row;

use crate::db::{count, Session};
use crate::failure::Failure;
use crate::outcome::Reason;

use super::{Measured, QueueSettings, CAP};

/// Whether each listed queue's table and its dead-letter queue's exist, in
/// `QUEUE_NAMES` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tables(pub Vec<(bool, bool)>);

impl QueueSettings {
    /// One row of booleans: each queue's table, then its dead-letter queue's.
    pub(super) fn presence(&self) -> String {
        let columns: Vec<String> = self
            .names
            .iter()
            .flat_map(|name| {
                [
                    format!("to_regclass('pgmq.q_{name}') IS NOT NULL"),
                    format!("to_regclass('pgmq.q_{name}{}') IS NOT NULL", self.dlq_suffix),
                ]
            })
            .collect();
        format!("SELECT {}", columns.join(", "))
    }

    /// A row per queue whose table exists: its name, how many messages are
    /// ready (counted up to [`CAP`]), how long the oldest ready one has
    /// waited, and the recent dead letters (among the newest [`CAP`]: msg_id
    /// grows with enqueued_at, so no full scan). `None` when no table exists.
    /// The names were validated (a-z, 0-9, _), so they go in as written.
    pub(super) fn numbers(&self, tables: &Tables) -> Option<String> {
        let window = self.dead_letter_window_secs;
        let rows: Vec<String> = self
            .names
            .iter()
            .zip(&tables.0)
            .filter(|(_, (queue, _))| *queue)
            .map(|(name, (_, dlq))| {
                let dead = if *dlq {
                    format!(
                        "(SELECT count(*) FROM (SELECT enqueued_at FROM pgmq.q_{name}{suffix} \
                         ORDER BY msg_id DESC LIMIT {CAP}) d \
                         WHERE enqueued_at >= now() - interval '{window} seconds')",
                        suffix = self.dlq_suffix
                    )
                } else {
                    "0::bigint".to_owned()
                };
                // One walk of pgmq's `vt` index gives both the count and,
                // as its first row, the oldest.
                format!(
                    "SELECT '{name}'::text, count(*), \
                     coalesce(floor(extract(epoch FROM now() - min(vt)))::bigint, 0), {dead} \
                     FROM (SELECT vt FROM pgmq.q_{name} WHERE vt <= now() ORDER BY vt LIMIT {CAP}) r"
                )
            })
            .collect();
        (!rows.is_empty()).then(|| rows.join(" UNION ALL "))
    }
}

/// The presence row.
pub(super) fn tables(row: &Row) -> Result<Tables, tokio_postgres::Error> {
    let mut pairs = Vec::with_capacity(row.len() / 2);
    for i in (0..row.len()).step_by(2) {
        pairs.push((row.try_get(i)?, row.try_get(i + 1)?));
    }
    Ok(Tables(pairs))
}

/// The numbers rows, by queue name.
pub(super) fn numbers(rows: &[Row]) -> Result<HashMap<String, Measured>, tokio_postgres::Error> {
    rows.iter()
        .map(|row| {
            let measured = Measured {
                ready: count(row, 1)?,
                oldest_ready_secs: count(row, 2)?,
                dead_letters_recent: count(row, 3)?,
            };
            Ok((row.try_get(0)?, measured))
        })
        .collect()
}

/// The rows of `sql`, or none when there is nothing to ask.
pub(super) async fn query(session: &Session<'_>, sql: Option<&str>) -> Result<Vec<Row>, Failure> {
    match sql {
        Some(sql) => session.query(sql).await,
        None => Ok(Vec::new()),
    }
}

pub(super) fn present(rows: &[Row]) -> Result<Tables, Failure> {
    rows.first()
        .ok_or_else(|| unexpected("no row"))
        .and_then(|row| tables(row).map_err(unexpected))
}

pub(super) fn unexpected(_: impl std::fmt::Display) -> Failure {
    Failure::new(Reason::BadResponse, "unexpected queue row")
}
