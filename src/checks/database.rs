//! The database check: `SELECT 1` over the session's pooled connection.

use tokio_postgres::SimpleQueryMessage;

use futures_util::future::BoxFuture;

use super::{Check, CheckOutcome, Reason};
use crate::db::Session;

pub struct DatabaseCheck;

impl Check for DatabaseCheck {
    fn run<'a>(&'a self, session: Option<&'a Session<'a>>) -> BoxFuture<'a, CheckOutcome> {
        Box::pin(async move {
            match session {
                Some(session) => check(session).await,
                None => super::no_database(),
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
