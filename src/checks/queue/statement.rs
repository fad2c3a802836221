//! The queue component's one statement and its rows.

use tokio_postgres::SimpleQueryMessage;

use super::{Measured, QueueSettings, QueueState, CAP};

impl QueueSettings {
    /// The one statement: a row per queue with its name and
    /// `"<ready> <oldest_ready_secs> <dead_letters_recent>"`, or NULL when
    /// the queue's table (or the `pgmq` schema) does not exist. Each queue
    /// costs one `query_to_xml` call, whose query reads the dead-letter queue
    /// only when `to_regclass` finds it.
    pub(super) fn statement(&self) -> String {
        let literal = |sql: &str| format!("'{}'", sql.replace('\'', "''"));
        let rows: Vec<String> = self
            .names
            .iter()
            .map(|name| {
                let queue = format!("pgmq.q_{name}");
                let dlq = format!("pgmq.q_{name}{}", self.dlq_suffix);
                // One scan of pgmq's `vt` index yields both: the count
                // (capped) and, as its first row, the oldest.
                let ready = "SELECT count(*) || ' ' || \
                     coalesce(floor(extract(epoch FROM now() - min(vt)))::bigint, 0) || ' ' || ";
                let rest = format!(
                    " AS v FROM (SELECT vt FROM {queue} WHERE vt <= now() ORDER BY vt LIMIT {CAP}) r"
                );
                // msg_id grows with enqueued_at: the newest CAP dead letters
                // hold every recent one (up to the cap) without a full scan.
                let dead = format!(
                    "(SELECT count(*) FROM (SELECT enqueued_at FROM {dlq} ORDER BY msg_id DESC LIMIT {CAP}) d \
                     WHERE enqueued_at >= now() - interval '{window} seconds')",
                    window = self.dead_letter_window_secs,
                );
                format!(
                    "SELECT {name}, CASE WHEN to_regclass({queue_text}) IS NOT NULL THEN \
                     substring(query_to_xml({ready} || CASE WHEN to_regclass({dlq_text}) IS NULL THEN '0' ELSE {dead} END || {rest}, \
                     false, true, '')::text FROM '<v>([^<]*)</v>') END",
                    name = literal(name),
                    queue_text = literal(&queue),
                    dlq_text = literal(&dlq),
                    ready = literal(ready),
                    dead = literal(&dead),
                    rest = literal(&rest),
                )
            })
            .collect();
        rows.join(" UNION ALL ")
    }
}

/// The rows: a queue's name, and its three numbers or NULL.
pub(super) fn parse(messages: &[SimpleQueryMessage]) -> Option<Vec<QueueState>> {
    let mut states = Vec::new();
    for message in messages {
        let SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let measured = match row.get(1) {
            None => None,
            Some(text) => {
                let mut numbers = text.split(' ').map(str::parse::<u64>);
                let mut next = || numbers.next()?.ok();
                Some(Measured {
                    ready: next()?,
                    oldest_ready_secs: next()?,
                    dead_letters_recent: next()?,
                })
            }
        };
        states.push(QueueState {
            name: row.get(0)?.to_owned(),
            measured,
        });
    }
    Some(states)
}
