//! [`Statement`]: one statement's text and its typed parameters, as a
//! check builds it once from its validated settings and runs it on the
//! evaluation's [`super::Session`] at every evaluation.
//!
//! Parameters travel in the same Bind message as an unnamed statement's
//! text (tokio-postgres's `query_typed`: Parse, Bind, Execute and Sync in
//! one write), so they cost no round trip and leave no prepared statement
//! behind: transaction-mode poolers (Supavisor, PgBouncer) take them.
//! Values go in as parameters; only SQL names that cannot be parameters
//! (a table in `FROM`) are written into the text, after validation
//! (`db::names`).

use tokio_postgres::types::{ToSql, Type};

/// A statement's text and its parameters, `$1`, `$2`, … in order, each
/// with the type the text expects.
#[derive(Debug)]
pub struct Statement {
    sql: String,
    params: Vec<(Box<dyn ToSql + Send + Sync>, Type)>,
}

impl Statement {
    /// A statement whose text takes no parameters yet.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// The next parameter, sent as `ty`.
    pub fn bind(mut self, value: impl ToSql + Send + Sync + 'static, ty: Type) -> Self {
        self.params.push((Box::new(value), ty));
        self
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The parameters as `query_typed` takes them.
    pub(super) fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|(value, ty)| (value.as_ref() as &(dyn ToSql + Sync), ty.clone()))
            .collect()
    }
}
