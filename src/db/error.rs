//! Postgres errors in the shared failure vocabulary: what only Postgres can
//! say (SQLSTATE codes) is read here; causes below it (TLS, timeouts,
//! refused connections) are classified by [`crate::failure::classify`] like
//! any other component's.

use crate::failure::{self, Failure};
use crate::outcome::Reason;

/// A tokio-postgres error, classified.
pub fn postgres_failure(e: &tokio_postgres::Error) -> Failure {
    let reason = match e.as_db_error().map(|db| db.code().code()) {
        Some("42P01" | "3F000") => Reason::SchemaMissing,
        // Login refused: bad password, no such role, no such database.
        Some(c) if c.starts_with("28") || c == "3D000" => Reason::Auth,
        // Shutting down, starting up, too many connections.
        Some(c) if c.starts_with("57P") || c == "53300" => Reason::Unreachable,
        Some(_) => Reason::QueryFailed,
        None => failure::classify(e).unwrap_or(if e.is_closed() {
            Reason::Unreachable
        } else {
            Reason::QueryFailed
        }),
    };
    Failure::new(reason, failure::chain(e))
}

/// A failure to get a pooled connection, classified.
pub(super) fn pool_failure(e: deadpool_postgres::PoolError) -> Failure {
    match e {
        deadpool_postgres::PoolError::Backend(e) => postgres_failure(&e),
        deadpool_postgres::PoolError::Timeout(_) => {
            Failure::new(Reason::Timeout, "timed out waiting for a pooled connection")
        }
        other => Failure::new(Reason::Unreachable, other.to_string()),
    }
}
