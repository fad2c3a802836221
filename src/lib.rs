//! # meshhook-health
//!
//! The public `GET /health` of MeshHook: whether its Postgres database, its
//! Supabase services, its worker processes and (opt-in) its runs, event-log
//! partitions and pgmq job queue are healthy, and which version runs —
//! answered within a deadline whatever the dependencies do.
//!
//! The request path reads top to bottom, and no module imports one that
//! imports it back (children included: a folder's files import their
//! siblings or leaves, never their `mod.rs`):
//!
//! ```text
//! lambda.rs / serve.rs   transports: Lambda events, plain HTTP/1.1
//!         │
//!      router.rs         routing, methods, status codes, headers (shared)
//!         │
//!     evaluator/         Evaluator: deadline, shared evaluations, cache,
//!         │              listeners (logging.rs the log line, emf.rs
//!         │              CloudWatch EMF, prometheus/ serve mode's /metrics)
//!      checks/           the components, one file (or folder) each, and REGISTRY
//!         │
//!   component.rs         a component: its registry entry, Settings, Check
//!         │
//!   db/, tls.rs          Postgres: settings, errors, Statement, pool + session; TLS
//!
//!   report.rs            Report, aggregation, public and verbose JSON bodies
//!   failure.rs           one failure vocabulary (Failure, reason_of) for all
//!   outcome.rs           leaves: Status, Reason, Verdict, CheckOutcome, Aggregate;
//!   figures.rs, env.rs   Figure/MetricSet; Source/ConfigError/Secret
//!   json_text.rs         JSON written as text for the per-evaluation lines
//! ```
//!
//! [`config`] turns the environment into typed settings once at start-up,
//! asking each registered component to read its own ([`secrets_manager`]
//! fills in `DATABASE_URL` from AWS Secrets Manager when asked, and again
//! after the database refuses a rotated password); [`heartbeat`] is the
//! workers' `heartbeat` command and [`migrate`] the deployers' `migrate`;
//! [`shutdown`] waits for SIGTERM/SIGINT.

pub mod checks;
pub mod component;
pub mod config;
pub mod db;
pub mod emf;
pub mod env;
pub mod evaluator;
pub mod failure;
pub mod figures;
pub mod heartbeat;
pub mod https;
mod json_text;
pub mod lambda;
pub mod logging;
pub mod migrate;
pub mod outcome;
pub mod prometheus;
pub mod report;
pub mod router;
pub mod secrets_manager;
pub mod serve;
pub mod shutdown;
mod tls;

use std::sync::Arc;

pub use component::StartupError;
use component::{BuildContext, Lifetime};
use config::Config;
use evaluator::{CheckSet, ComponentCheck, EvaluationListener, Evaluator};

/// How long closing what the checks keep may take at shutdown.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything a request needs: settings and the evaluator (which owns the
/// database pool and the HTTPS client). Built once per process.
pub struct App {
    pub config: Config,
    pub evaluator: Evaluator,
    /// Serve mode's `/metrics`, when `HEALTH_METRICS_TOKEN` enables it.
    pub exposition: Option<Arc<prometheus::Exposition>>,
}

impl App {
    /// Builds the checks without touching the network. Call
    /// [`App::warm_up`] inside the runtime to open the database connection.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let context = BuildContext {
            checker_version: env!("CARGO_PKG_VERSION"),
        };
        let mut checks = Vec::with_capacity(config.components.len());
        for configured in &config.components {
            checks.push(ComponentCheck {
                enabled: configured.enabled,
                check: configured.settings.clone().build(&context)?,
            });
        }
        let checks = CheckSet {
            checks,
            database: config.database.as_ref().map(db::Database::new),
        };
        Ok(Self::assemble(config, checks))
    }

    /// An app whose checks are given rather than built from the
    /// configuration: the tests' seam for planting a misbehaving check.
    #[cfg(feature = "test-seams")]
    pub fn with_checks(config: Config, checks: CheckSet) -> Self {
        Self::assemble(config, checks)
    }

    fn assemble(config: Config, checks: CheckSet) -> Self {
        let mut listeners: Vec<Box<dyn EvaluationListener>> =
            vec![Box::new(logging::EvaluationLog {
                redactor: logging::Redactor::new(config.secrets()),
            })];
        if config.lambda {
            listeners.push(Box::new(emf::EmfMetrics::new(&config.metrics_namespace)));
        }
        let exposition = (!config.lambda && config.metrics_token.is_some())
            .then(|| Arc::new(prometheus::Exposition::new(&config.components)));
        if let Some(exposition) = &exposition {
            listeners.push(Box::new(exposition.clone()));
        }
        let evaluator = Evaluator::new(checks, config.timeout, config.cache_ttl, listeners);
        Self {
            config,
            evaluator,
            exposition,
        }
    }

    /// Opens what the checks keep between evaluations (the database
    /// connection, Realtime's socket) in the background (never blocks); in
    /// serve mode they are also kept alive.
    pub fn warm_up(&self) {
        let lifetime = if self.config.lambda {
            Lifetime::Frozen
        } else {
            Lifetime::Serving
        };
        self.evaluator.warm_up(lifetime);
    }

    /// Closes what the checks keep (Realtime's socket: a close frame), at
    /// most [`CLOSE_GRACE`] each, when the process stops.
    pub async fn close(&self) {
        self.evaluator.close(CLOSE_GRACE).await;
    }
}
