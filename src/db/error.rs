//! Postgres errors in the shared failure vocabulary: what only Postgres can
//! say (SQLSTATE codes) is read here; causes below it (TLS, timeouts,
//! refused connections) are classified by [`crate::failure::reason_of`] like
//! any other component's.

use crate::failure::{self, Failure};
use crate::outcome::Reason;

/// A tokio-postgres error, classified.
pub fn postgres_failure(e: &tokio_postgres::Error) -> Failure {
    let reason = match e.as_db_error() {
        Some(db) => match pooler_refusal(db.message()) {
            Some(refusal) => refusal,
            None => server_reason(db.code().code()),
        },
        None => failure::reason_of(e).unwrap_or(if e.is_closed() {
            Reason::Unreachable
        } else {
            Reason::QueryFailed
        }),
    };
    Failure::new(reason, failure::chain(e))
}

/// What Postgres's own SQLSTATE says.
fn server_reason(code: &str) -> Reason {
    match code {
        // No such table, schema or function (`migrate` not run).
        "42P01" | "3F000" | "42883" => Reason::SchemaMissing,
        // Login refused: bad password, no such role, no such database.
        c if c.starts_with("28") || c == "3D000" => Reason::Auth,
        // Every client slot taken ("too many clients already", or the
        // rest reserved for superusers).
        "53300" => Reason::ConnectionsExhausted,
        // Shutting down, starting up.
        c if c.starts_with("57P") => Reason::Unreachable,
        _ => Reason::QueryFailed,
    }
}

/// A pooler's refusal of a login, told by its words: Supavisor answers
/// them all with SQLSTATE XX000 (an internal error, for Postgres) and
/// PgBouncer with 08P01, so the code alone would read "a bug or a
/// permission". Wording varies by version; the match is loose.
/// - Supavisor `Tenant or user not found`: a wrong pooler host or region,
///   or a user name without `.<project-ref>` → `auth`;
/// - Supavisor `max client connections reached` (EMAXCONN), `max clients
///   reached in session mode` (EMAXCONNSESSION); PgBouncer `no more
///   connections allowed` → `connections_exhausted`.
fn pooler_refusal(message: &str) -> Option<Reason> {
    let message = message.to_ascii_lowercase();
    if message.contains("tenant or user not found") {
        Some(Reason::Auth)
    } else if [
        "max client connections",
        "max clients reached",
        "no more connections allowed",
    ]
    .iter()
    .any(|words| message.contains(words))
    {
        Some(Reason::ConnectionsExhausted)
    } else {
        None
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooler_refusals_are_told_by_their_words() {
        for (message, reason) in [
            ("Tenant or user not found", Some(Reason::Auth)),
            ("(EMAXCONN) max client connections reached, limit: 200", Some(Reason::ConnectionsExhausted)),
            (
                "(EMAXCONNSESSION) max clients reached in session mode - max clients are limited to pool_size: 15",
                Some(Reason::ConnectionsExhausted),
            ),
            ("no more connections allowed (max_client_conn)", Some(Reason::ConnectionsExhausted)),
            ("relation \"x\" does not exist", None),
        ] {
            assert_eq!(pooler_refusal(message), reason, "{message}");
        }
        assert_eq!(server_reason("53300"), Reason::ConnectionsExhausted);
        assert_eq!(server_reason("57P03"), Reason::Unreachable);
        assert_eq!(server_reason("28P01"), Reason::Auth);
        assert_eq!(server_reason("XX000"), Reason::QueryFailed);
    }
}
