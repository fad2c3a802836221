//! The `database` component: `SELECT 1` over the evaluation's pooled
//! connection. It has no settings of its own: `DATABASE_URL` belongs to the
//! pool that every component using Postgres shares.

use futures_util::future::BoxFuture;
use tokio_postgres::SimpleQueryMessage;

use crate::component::{BuildContext, Check, CheckContext, Component, Settings, StartupError};
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason};

pub const COMPONENT: Component = Component {
    name: "database",
    enabled_by_default: true,
    uses_postgres: true,
    read_settings,
};

fn read_settings(_env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(DatabaseSettings))
}

#[derive(Debug)]
struct DatabaseSettings;

impl Settings for DatabaseSettings {
    fn build(&self, _context: &BuildContext) -> Result<Box<dyn Check>, StartupError> {
        Ok(Box::new(DatabaseCheck))
    }
}

struct DatabaseCheck;

impl Check for DatabaseCheck {
    fn run<'a>(
        &'a self,
        context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>> {
        Box::pin(select_one(context))
    }
}

async fn select_one(context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
    let messages = context.postgres()?.simple_query("SELECT 1").await?;
    let answered = messages
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(row) if row.get(0) == Some("1")));
    Ok(if answered {
        CheckOutcome::healthy()
    } else {
        CheckOutcome::unhealthy(Reason::BadResponse, "SELECT 1 returned no row")
    })
}
