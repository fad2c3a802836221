//! What a component is, through the three stages of its life:
//!
//! 1. [`Component`]: a static entry of `checks::REGISTRY` — its name, whether
//!    it is on by default, whether it queries Postgres, its settings type
//!    (through [`read`]), which figures (metrics) it measures;
//! 2. [`Settings`]: what it read from the environment at start-up (an
//!    error names the variable), from which its check is built; the
//!    configuration holds each enabled one beside its [`Enabled`]
//!    (component and criticality, decided once);
//! 3. [`Check`]: an `async fn` run once per evaluation with a
//!    [`CheckContext`]; the evaluator holds it as a [`RunCheck`].
//!
//! A component is its settings type (`impl Settings`) and its check (`impl
//! Check`), in one file (or folder) under `checks/`, and nothing else: the
//! generic [`read`] and the blanket [`RunCheck`] are what the registry and
//! the evaluator need of it. A check only *observes*: it returns a
//! [`CheckOutcome`] and never decides the overall status, the deadline or
//! the HTTP answer — the evaluator and the router own those.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::db::Session;
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::figures::Figure;
use crate::outcome::{CheckOutcome, Reason};

/// A component as the registry lists it.
pub struct Component {
    /// Its name in bodies, logs, metrics and `HEALTH_COMPONENTS`.
    pub name: &'static str,
    /// Enabled when `HEALTH_COMPONENTS` is unset.
    pub enabled_by_default: bool,
    /// Its `unhealthy` makes the whole unhealthy unless `HEALTH_NONCRITICAL`
    /// names it; when false, only `HEALTH_CRITICAL` makes it so.
    pub critical_by_default: bool,
    /// Seen only by those the verbose body, logs, metrics and alarms are
    /// for: never in the public body's `details`, never part of the public
    /// status or HTTP code (what it finds would help an attacker).
    pub private: bool,
    /// Its check queries Postgres: configuration then requires
    /// `DATABASE_URL`, and the check's context carries the evaluation's
    /// shared session. A check without it never sees the database.
    pub uses_postgres: bool,
    /// Reads the component's settings: [`read`] of its settings type.
    pub read_settings: ReadSettings,
    /// The figures its check may add to an outcome's `metrics`.
    pub figures: &'static [Figure],
}

/// How a component reads its settings from the environment.
pub type ReadSettings = fn(&dyn Source) -> Result<Arc<dyn Settings>, ConfigError>;

/// The one settings reader every registry entry names, as
/// `read::<ItsSettings>`: a plain `fn` the registry can hold, so that a
/// component writes no reader of its own.
pub fn read<S: Settings + 'static>(env: &dyn Source) -> Result<Arc<dyn Settings>, ConfigError> {
    Ok(Arc::new(S::from_source(env)?))
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// An enabled component: which one, and what its status counts for in the
/// whole. Decided once by configuration, and carried as it is by the check
/// the evaluator runs and the report it gives.
#[derive(Debug, Clone, Copy)]
pub struct Enabled {
    pub component: &'static Component,
    /// Its `unhealthy` is the whole's; otherwise it only degrades the whole
    /// (`critical_by_default`, `HEALTH_CRITICAL`, `HEALTH_NONCRITICAL`).
    pub critical: bool,
}

impl Enabled {
    pub fn name(&self) -> &'static str {
        self.component.name
    }

    /// Left out of the public body and of the public status.
    pub fn private(&self) -> bool {
        self.component.private
    }
}

/// A component's settings, read and checked at start-up. `Debug` must never
/// show a secret. The configuration holds them once; the check built from
/// them shares them (`build` takes the `Arc`).
pub trait Settings: std::fmt::Debug + Send + Sync {
    /// Reads them from the environment; an error names the variable at fault.
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError>
    where
        Self: Sized;

    /// Secret values these settings hold, so that logs can redact them.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builds the check without touching the network.
    fn build(self: Arc<Self>, context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError>;
}

/// What building a check may use beyond its own settings.
pub struct BuildContext<'a> {
    /// This binary's version (sent as part of the HTTPS User-Agent).
    pub checker_version: &'a str,
}

impl BuildContext<'_> {
    /// An HTTPS client for a component's probes (no redirects followed,
    /// kept connections); `what` names it in the start-up error.
    pub fn https_client(&self, what: &'static str) -> Result<reqwest::Client, StartupError> {
        crate::tls::https_client(self.checker_version).map_err(|e| StartupError::new(what, e))
    }
}

/// A health check: what a component implements, as a plain `async fn`. The
/// evaluator cancels it when the deadline is reached, and isolates it: a
/// panic costs its component only. A check that could not observe returns
/// its [`Failure`]; the evaluator reports it as the component `unhealthy`
/// with that reason.
pub trait Check: Send + Sync {
    fn observe(
        &self,
        context: &CheckContext<'_>,
    ) -> impl Future<Output = Result<CheckOutcome, Failure>> + Send;

    /// Opens, in the background, what the check keeps between evaluations
    /// (Realtime's socket), ahead of the first one; with
    /// [`Lifetime::Serving`] also keeps it alive while no evaluation asks.
    /// Never blocks. Most checks keep nothing.
    fn warm_up(&self, _lifetime: Lifetime) {}

    /// Closes what the check keeps, politely, when the process stops.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How the process runs between evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// A Lambda container: frozen between invocations, so nothing runs in
    /// the background; what a check keeps may be found dead when thawed.
    Frozen,
    /// `serve`: the process runs on between requests, and a check may keep
    /// what it holds alive.
    Serving,
}

/// A [`Check`] as the evaluator holds it, behind `dyn` (an `async fn` in a
/// trait cannot be called through one). Every check is one: no component
/// writes this.
pub trait RunCheck: Send + Sync {
    fn run<'a>(
        &'a self,
        context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>>;

    fn warm_up(&self, lifetime: Lifetime);

    fn close(&self) -> BoxFuture<'_, ()>;
}

impl<C: Check> RunCheck for C {
    fn run<'a>(
        &'a self,
        context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>> {
        Box::pin(self.observe(context))
    }

    fn warm_up(&self, lifetime: Lifetime) {
        Check::warm_up(self, lifetime);
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Check::close(self))
    }
}

/// What one evaluation gives a check.
pub struct CheckContext<'a> {
    postgres: Option<&'a Session<'a>>,
    deadline: Instant,
}

impl<'a> CheckContext<'a> {
    /// For a component that uses Postgres: the evaluation's shared session.
    pub fn with_postgres(session: &'a Session<'a>, deadline: Instant) -> Self {
        Self {
            postgres: Some(session),
            deadline,
        }
    }

    /// For a component that does not.
    pub fn without_postgres(deadline: Instant) -> Self {
        Self {
            postgres: None,
            deadline,
        }
    }

    /// When the evaluator cancels the check. A check made of parts (one
    /// Supabase service each) bounds each part a little earlier, so that
    /// one part that never answers is reported as that part's timeout
    /// rather than costing the whole component.
    pub fn deadline(&self) -> Instant {
        self.deadline
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

/// When a check last asked for a reading too costly for every evaluation
/// (the database's size, the tenancy catalog), so that it is read on the
/// first evaluation and then at most every so often. The time is taken when
/// asked, not when answered: a reading that cannot finish within the
/// deadline is not asked for again at every evaluation.
#[derive(Debug, Default)]
pub struct Asked(Option<tokio::time::Instant>);

impl Asked {
    /// Whether this evaluation reads: never asked yet, `every` gone by since,
    /// or `anyway`; if so, now is when it was asked.
    pub fn due(&mut self, every: std::time::Duration, anyway: bool) -> bool {
        let due = anyway || self.0.is_none_or(|at| at.elapsed() >= every);
        if due {
            self.0 = Some(tokio::time::Instant::now());
        }
        due
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
