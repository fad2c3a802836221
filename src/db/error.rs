//! Postgres errors in the shared failure vocabulary: what only Postgres can
//! say (SQLSTATE codes) is read here; causes below it (TLS, timeouts,
//! refused connections) are classified by [`crate::failure::classify`] like
//! any other component's.

use crate::failure::{self, Failure};
use crate::outcome::Reason;

/// A tokio-postgres error, classified.
pub fn postgres_failure(e: &tokio_postgres::Error) -> Failure {
    let reason = match e.as_db_error().map(|db| db.code().code()) {
        // No such table, schema or function (`migrate` not run).
        Some("42P01" | "3F000" | "42883") => Reason::SchemaMissing,
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

/// Whether `e` says that this connection, not the database, is gone: closed
/// under us, or its server session ended — by an administrator
/// (`pg_terminate_backend`, 57P01), a crash restart (57P02), the server's
/// `idle_session_timeout` (57P05) or a connection exception (class 08). A
/// query that fails so deserves one more try on a new connection; the
/// database may be perfectly up.
pub fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            matches!(code, "57P01" | "57P02" | "57P05") || code.starts_with("08")
        })
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
