//! What a component is: a [`Definition`] (its name and how its settings are
//! read), its [`Settings`] (read once at start-up) and its [`Check`] (run
//! once per evaluation). Each component is one file under `checks/` that
//! provides all three; `checks::REGISTRY` lists them.
//!
//! A check only *observes*: it returns a [`CheckOutcome`] and never decides
//! the overall status, the deadline or the HTTP answer — the evaluator
//! (`health`) and the router (`http`) own those.

use futures_util::future::BoxFuture;

use crate::db::Session;
use crate::env::{ConfigError, Source};
use crate::outcome::{CheckOutcome, Reason};

/// A health check. `session` is the evaluation's shared database session
/// (`None` when no database is configured). A check must not decide the
/// deadline: the evaluator cancels it when time is up.
pub trait Check: Send + Sync {
    fn run<'a>(&'a self, session: Option<&'a Session<'a>>) -> BoxFuture<'a, CheckOutcome>;
}

/// A component's settings, read and checked at start-up. `Debug` must never
/// show a secret.
pub trait Settings: std::fmt::Debug + Send + Sync {
    /// Secret values these settings hold, so that logs can redact them.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builds the check without touching the network.
    fn check(&self, context: &Context) -> Result<Box<dyn Check>, StartupError>;
}

/// What building a check may use beyond its own settings.
pub struct Context<'a> {
    /// The reported version (sent as part of the HTTPS User-Agent).
    pub version: &'a str,
}

/// One component: its name in bodies, logs and `HEALTH_COMPONENTS`, and how
/// to read its settings.
pub struct Definition {
    pub name: &'static str,
    /// Enabled when `HEALTH_COMPONENTS` is unset.
    pub enabled_by_default: bool,
    /// Whether its check queries the database (and so needs `DATABASE_URL`).
    pub needs_database: bool,
    /// Reads the component's settings; an error names the variable at fault.
    pub settings: ReadSettings,
}

/// How a component reads its settings from the environment.
pub type ReadSettings = fn(&dyn Source) -> Result<Box<dyn Settings>, ConfigError>;

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A start-up failure that is not a configuration value's fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not build the HTTPS client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// The outcome for a database-backed check when no database is configured.
pub fn no_database() -> CheckOutcome {
    CheckOutcome::unhealthy(Reason::NotConfigured, "no database configured")
}
