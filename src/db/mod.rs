//! The Postgres side, one concept a file: [`config`] (what `DATABASE_URL`
//! or its secret says, with libpq's `sslmode`), [`connection_string`] (the
//! two libpq string forms), [`error`] (Postgres errors in the shared failure
//! vocabulary), [`names`] (SQL names written into statements) and [`pool`]
//! (the pool of the process and the [`Session`] through which the checks of
//! one evaluation share a connection). TLS lives
//! in `tls.rs`, shared with HTTPS.

pub mod config;
mod connection_string;
pub mod error;
pub mod names;
pub mod pool;

pub use crate::tls::SslMode;
pub use config::DbConfig;
pub use error::postgres_failure;
pub use pool::{Database, Session};
