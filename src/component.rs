//! What a component is, through the three stages of its life:
//!
//! 1. [`Component`]: a static entry of `checks::REGISTRY` — its name, whether
//!    it is on by default, whether it queries Postgres, how its settings are
//!    read, which figures (metrics) it measures;
//! 2. [`Settings`]: what it read from the environment at start-up (an
//!    error names the variable), from which its check is built; the
//!    configuration holds each enabled one as a `config::ComponentConfig`
//!    (component, settings, criticality);
//! 3. [`Check`]: run once per evaluation with a [`CheckContext`]; the
//!    evaluator holds each as a `evaluator::ComponentCheck` (name, criticality,
//!    whether it gets the Postgres session).
//!
//! Each component is one file (or folder) under `checks/` that provides all
//! three. A check only *observes*: it returns a [`CheckOutcome`] and never
//! decides the overall status, the deadline or the HTTP answer — the
//! evaluator (`health`) and the router (`http`) own those.

use futures_util::future::BoxFuture;

use crate::db::Session;
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Figure, Reason};

/// A component as the registry lists it.
pub struct Component {
    /// Its name in bodies, logs, metrics and `HEALTH_COMPONENTS`.
    pub name: &'static str,
    /// Enabled when `HEALTH_COMPONENTS` is unset.
    pub enabled_by_default: bool,
    /// Its check queries Postgres: configuration then requires
    /// `DATABASE_URL`, and the check's context carries the evaluation's
    /// shared session. A check without it never sees the database.
    pub uses_postgres: bool,
    /// Reads the component's settings; an error names the variable at fault.
    pub read_settings: ReadSettings,
    /// The figures its check may add to an outcome's `metrics`.
    pub figures: &'static [Figure],
}

/// How a component reads its settings from the environment.
pub type ReadSettings = fn(&dyn Source) -> Result<Box<dyn Settings>, ConfigError>;

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A component's settings, read and checked at start-up. `Debug` must never
/// show a secret.
pub trait Settings: std::fmt::Debug + Send + Sync {
    /// Secret values these settings hold, so that logs can redact them.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builds the check without touching the network.
    fn build(&self, context: &BuildContext) -> Result<Box<dyn Check>, StartupError>;
}

/// What building a check may use beyond its own settings.
pub struct BuildContext<'a> {
    /// This binary's version (sent as part of the HTTPS User-Agent).
    pub checker_version: &'a str,
}

/// A health check. The evaluator cancels it when the deadline is reached,
/// and isolates it: a panic costs its component only. A check that could
/// not observe returns its [`Failure`]; the evaluator reports it as the
/// component `unhealthy` with that reason.
pub trait Check: Send + Sync {
    fn run<'a>(
        &'a self,
        context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>>;
}

/// What one evaluation gives a check.
pub struct CheckContext<'a> {
    postgres: Option<&'a Session<'a>>,
}

impl<'a> CheckContext<'a> {
    /// For a component that uses Postgres: the evaluation's shared session.
    pub fn with_postgres(session: &'a Session<'a>) -> Self {
        Self {
            postgres: Some(session),
        }
    }

    /// For a component that does not.
    pub fn without_postgres() -> Self {
        Self { postgres: None }
    }

    /// The evaluation's Postgres session: the checks of one evaluation
    /// share its connection and their statements are pipelined on it.
    /// Configuration guarantees one for a component marked `uses_postgres`;
    /// any other gets `not_configured`.
    pub fn postgres(&self) -> Result<&'a Session<'a>, Failure> {
        self.postgres
            .ok_or_else(|| Failure::new(Reason::NotConfigured, "no database for this component"))
    }
}

/// A start-up failure that is not a configuration value's fault (a client
/// a check needs could not be built), whatever library it comes from.
#[derive(Debug, thiserror::Error)]
#[error("could not build {what}: {source}")]
pub struct StartupError {
    pub what: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StartupError {
    pub fn new(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            what,
            source: source.into(),
        }
    }
}
