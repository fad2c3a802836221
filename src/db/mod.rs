//! The Postgres side, one concept a file: [`config`] (what `DATABASE_URL`
//! or its secret says, with libpq's `sslmode`), [`connection_string`] (the
//! two libpq string forms), [`error`] (Postgres errors in the shared failure
//! vocabulary), [`names`] (SQL names written into statements), [`Statement`]
//! (a statement's text and typed parameters), [`Planned`] (a statement also
//! installed as a function, whose plan the server keeps) and [`pool`]
//! (the pool of the process and the [`Session`] through which the checks of
//! one evaluation share a connection). TLS lives
//! in `tls.rs`, shared with HTTPS.

pub mod config;
mod connection_string;
pub mod error;
pub mod names;
pub mod planned;
pub mod pool;
mod statement;

pub use crate::tls::{SslMode, SslNegotiation};
pub use config::DbConfig;
pub use error::postgres_failure;
pub use planned::Planned;
pub use pool::{Database, Session};
pub use statement::Statement;

/// A `bigint` count or age column as `u64` (a negative one, which counts
/// and ages never are, reads 0); the column's type is checked.
pub(crate) fn count(
    row: &tokio_postgres::Row,
    column: usize,
) -> Result<u64, tokio_postgres::Error> {
    row.try_get::<_, i64>(column)
        .map(|n| u64::try_from(n).unwrap_or(0))
}
