//! The `heartbeat` command for workers: upsert this worker's row, once or
//! periodically, and delete it on SIGTERM.

use std::time::Duration;

use tokio_postgres::types::Type;

use crate::db::{postgres_failure, Database};
use crate::failure::Failure;
use crate::shutdown::Shutdown;

const UPSERT: &str = "insert into monitoring.worker_heartbeats (worker_id, kind, version) values ($1, $2, $3) \
     on conflict (worker_id) do update set last_seen_at = now(), kind = excluded.kind, version = excluded.version";
const DELETE: &str = "delete from monitoring.worker_heartbeats where worker_id = $1";

/// One heartbeat write. `query_typed` sends an unnamed statement with its
/// parameter types in one round trip, so it passes transaction poolers.
async fn beat(
    db: &Database,
    worker_id: &str,
    kind: &str,
    version: Option<&str>,
) -> Result<(), Failure> {
    let client = db.connection().await?;
    client
        .query_typed(
            UPSERT,
            &[
                (&worker_id, Type::TEXT),
                (&kind, Type::TEXT),
                (&version, Type::TEXT),
            ],
        )
        .await
        .map(drop)
        .map_err(|e| postgres_failure(&e))
}

async fn forget(db: &Database, worker_id: &str) -> Result<(), Failure> {
    let client = db.connection().await?;
    client
        .query_typed(DELETE, &[(&worker_id, Type::TEXT)])
        .await
        .map(drop)
        .map_err(|e| postgres_failure(&e))
}

/// What `heartbeat` is asked to do.
pub struct Heartbeat<'a> {
    pub worker_id: &'a str,
    pub kind: &'a str,
    /// MeshHook's version (`MESHHOOK_VERSION`); `None` writes NULL, which
    /// the checker counts as "unknown".
    pub version: Option<&'a str>,
    /// `None`: write once and return.
    pub every: Option<Duration>,
}

/// Writes once, or every `every` until SIGTERM/SIGINT and then deletes the
/// row. In the periodic mode a failed write is logged and retried at the next
/// tick: a database blip must not kill the worker's heartbeat.
pub async fn run(
    db: &Database,
    beat_spec: Heartbeat<'_>,
    mut shutdown: Shutdown,
) -> Result<(), Failure> {
    let Heartbeat {
        worker_id,
        kind,
        version,
        every,
    } = beat_spec;
    let Some(every) = every else {
        return beat(db, worker_id, kind, version).await;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                match beat(db, worker_id, kind, version).await {
                    Ok(()) => tracing::debug!(worker_id, "heartbeat written"),
                    Err(e) => tracing::warn!(worker_id, error = %e, reason = e.reason.as_str(), "heartbeat failed"),
                }
            }
            () = shutdown.recv() => break,
        }
    }
    forget(db, worker_id).await?;
    tracing::info!(worker_id, "heartbeat row deleted on shutdown");
    Ok(())
}
