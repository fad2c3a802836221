//! [`Planned`]: a check's statement that `migrate` also installs as a
//! PL/pgSQL function in `monitoring`, called through the function when it
//! can be.
//!
//! Every statement here is an unnamed one (all a transaction-mode pooler
//! takes), so Postgres plans it at every evaluation — for a statement over
//! several catalogs, planning costs more than executing it. A PL/pgSQL
//! function's plan is kept by the server session, pooled or not, so calling
//! the function saves that planning; the readings are still made afresh at
//! every call. The function runs as its caller (`SECURITY INVOKER`), so it
//! reads exactly what the statement would.
//!
//! The process's first call reads inline: on a fresh backend (a cold
//! start's first answer) the function's first call also loads PL/pgSQL and
//! compiles the function, which costs more than one planning. Inline is the
//! function's statement itself ([`Planned::query`]), or plainer statements
//! from which the check derives the same reading ([`Planned::read`]: the
//! database and workers checks, whose plain reads a fresh backend answers
//! sooner). A function that cannot be called (`migrate` not run, an older
//! version, no `USAGE` on `monitoring`) turns to the inline reading for the
//! life of the process, within the same evaluation; the log says so once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::Row;

use super::{Session, Statement};
use crate::failure::Failure;
use crate::outcome::Reason;

pub struct Planned {
    function: Statement,
    /// The function's name, for the log.
    name: &'static str,
    callable: AtomicBool,
    started: AtomicBool,
}

impl Planned {
    /// The call of function `name`, with the parameters of the statement
    /// it runs.
    pub fn new(name: &'static str, function: Statement) -> Self {
        Self {
            function,
            name,
            callable: AtomicBool::new(true),
            started: AtomicBool::new(false),
        }
    }

    /// The rows of `inline`, a statement answering the same columns as the
    /// function: through the function when it can be called.
    pub async fn query(
        &self,
        session: &Session<'_>,
        inline: &Statement,
    ) -> Result<Vec<Row>, Failure> {
        self.read(session, session.query(inline), Ok).await
    }

    /// One reading: the function's rows, decoded by `from_function`, when
    /// the function can be called; else what `inline` reads (the same
    /// reading made without the function, its statements sent inline).
    pub async fn read<T>(
        &self,
        session: &Session<'_>,
        inline: impl Future<Output = Result<T, Failure>>,
        from_function: impl FnOnce(Vec<Row>) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let first = !self.started.swap(true, Ordering::Relaxed);
        if first || !self.callable.load(Ordering::Relaxed) {
            return inline.await;
        }
        match session.query(&self.function).await {
            Err(failure)
                if matches!(failure.reason, Reason::SchemaMissing | Reason::QueryFailed) =>
            {
                self.callable.store(false, Ordering::Relaxed);
                tracing::info!(
                    error = %failure,
                    "{} cannot be called; its statement is sent inline from now on (planned at every \
                     evaluation): run `meshhook-health migrate`, and grant the health role USAGE on \
                     schema monitoring",
                    self.name
                );
                inline.await
            }
            answered => answered.and_then(from_function),
        }
    }
}

/// Asserts that migration `file` creates `function` running `statement`
/// (word for word), and that `migrate` runs that file.
#[cfg(test)]
pub fn assert_migrated(file: &str, statement: &str, function: &str) {
    assert_eq!(migrated_statement(file), words(statement), "{function}");
    assert!(
        file.contains(function),
        "{function} is not created by its file"
    );
    assert!(
        crate::migrate::MIGRATION.contains(file),
        "migrate does not run the file of {function}"
    );
}

/// The statement a migration file's function runs (between `return query`
/// and its `;`), its words only: what the tests compare with the check's
/// own statement.
#[cfg(test)]
fn migrated_statement(file: &str) -> String {
    let body = &file[file.find("return query").expect("a return query") + "return query".len()..];
    words(&body[..body.find(";\n").expect("the statement's end")])
}

/// `sql`'s words, one space apart.
#[cfg(test)]
fn words(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
