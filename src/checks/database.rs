//! The `database` component: `SELECT 1` over the evaluation's pooled
//! connection. It has no settings of its own: `DATABASE_URL` belongs to the
//! pool that every database-backed component shares.

use futures_util::future::BoxFuture;
use tokio_postgres::SimpleQueryMessage;

use crate::component::{Check, Context, Definition, Settings, StartupError};
use crate::db::Session;
use crate::env::{ConfigError, Source};
use crate::outcome::{CheckOutcome, Reason};

pub const DEFINITION: Definition = Definition {
    name: "database",
    enabled_by_default: true,
    needs_database: true,
    settings,
};

fn settings(_env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(DatabaseSettings))
}

#[derive(Debug)]
struct DatabaseSettings;

impl Settings for DatabaseSettings {
    fn check(&self, _context: &Context) -> Result<Box<dyn Check>, StartupError> {
        Ok(Box::new(DatabaseCheck))
    }
}

pub struct DatabaseCheck;

impl Check for DatabaseCheck {
    fn run<'a>(&'a self, session: Option<&'a Session<'a>>) -> BoxFuture<'a, CheckOutcome> {
        Box::pin(async move {
            match session {
                Some(session) => check(session).await,
                None => crate::component::no_database(),
            }
        })
    }
}

async fn check(session: &Session<'_>) -> CheckOutcome {
    match session.simple_query("SELECT 1").await {
        Ok(messages) => {
            let answered = messages
                .iter()
                .any(|m| matches!(m, SimpleQueryMessage::Row(row) if row.get(0) == Some("1")));
            if answered {
                CheckOutcome::healthy()
            } else {
                CheckOutcome::unhealthy(Reason::BadResponse, "SELECT 1 returned no row")
            }
        }
        Err(e) => CheckOutcome::unhealthy(e.reason, e.message),
    }
}
