//! The `migrate` command for deployers: the heartbeat table, the database,
//! live_logs, workers and partitions components' functions (statements whose
//! plan the server keeps) and the `runs` component's function, in one
//! transaction, as the tables' owner.

use crate::checks::runs::RunsTables;
use crate::db::names::quote_ident;
use crate::db::{postgres_failure, Database};
use crate::failure::Failure;

/// The heartbeat table and the database, live_logs, workers and partitions
/// components' functions, idempotent;
/// also shipped as files for other migration tools.
pub const MIGRATION: &str = concat!(
    include_str!("../migrations/0001_worker_heartbeats.sql"),
    include_str!("../migrations/0003_database_readings.sql"),
    include_str!("../migrations/0004_live_logs_readings.sql"),
    include_str!("../migrations/0005_worker_readings.sql"),
    include_str!("../migrations/0006_partitions_readings.sql"),
);

/// Both migrations, in one transaction; the runs function's unqualified
/// table names are placed in the session's current schema.
pub async fn migrate(db: &Database, runs: &RunsTables) -> Result<(), Failure> {
    let client = db.connection().await?;
    let schema = client
        .query_one("select coalesce(current_schema(), 'public')", &[])
        .await
        .map_err(|e| postgres_failure(&e))?
        .get::<_, String>(0);
    let sql = format!(
        "begin;\n{MIGRATION}{}commit;\n",
        runs.migration(&quote_ident(&schema))
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| postgres_failure(&e))
}
