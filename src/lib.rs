//! # meshhook-health
//!
//! The public `GET /health` of MeshHook: whether its Postgres database, its
//! Supabase services, its worker processes and (opt-in) its job queue are
//! healthy, and which version runs — answered within a deadline whatever the
//! dependencies do.
//!
//! The request path reads top to bottom, and no module imports one that
//! imports it back:
//!
//! ```text
//! lambda.rs / serve.rs   transports: Lambda events, plain HTTP/1.1
//!         │
//!      http.rs           routing, methods, status codes, headers (shared)
//!         │
//!     health.rs          Evaluator: deadline, single-flight cache
//!         │
//!      checks/           the components, one file each, and REGISTRY
//!         │
//!   component.rs         what a component is: Definition, Settings, Check
//!         │
//!   db.rs, tls.rs        pool + pooler-safe queries, libpq sslmode semantics
//!
//!   report.rs            Report, aggregation, public and verbose JSON bodies
//!   outcome.rs, env.rs   leaves: Status/Reason/CheckOutcome; Source/ConfigError
//! ```
//!
//! [`config`] turns the environment into typed settings once at start-up,
//! asking each registered component to read its own ([`secrets`] fills in
//! `DATABASE_URL` from Secrets Manager when asked); [`telemetry`] sets up
//! logs and redacts secrets; [`metrics`] prints the CloudWatch EMF lines of
//! Lambda mode; [`heartbeat`] holds the `heartbeat` and `migrate` commands
//! for workers; [`shutdown`] waits for SIGTERM/SIGINT.

pub mod checks;
pub mod component;
pub mod config;
pub mod db;
pub mod env;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod outcome;
pub mod report;
pub mod secrets;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
mod tls;

use component::Context;
pub use component::StartupError;
use config::Config;
use health::{Checks, Evaluator, Registered};

/// Everything a request needs: settings and the evaluator (which owns the
/// database pool and the HTTPS client). Built once per process.
pub struct App {
    pub config: Config,
    pub evaluator: Evaluator,
}

impl App {
    /// Builds the checks without touching the network. Call
    /// [`App::warm_up`] inside the runtime to open the database connection.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let context = Context {
            version: &config.version,
        };
        let mut registered = Vec::with_capacity(config.components.len());
        for component in &config.components {
            registered.push(Registered {
                name: component.name(),
                critical: component.critical,
                check: component.settings.check(&context)?,
            });
        }
        let checks = Checks {
            registered,
            database: config.database.as_ref().map(db::Database::new),
        };
        Ok(Self::with_checks(config, checks))
    }

    /// An app whose checks are given rather than built from the
    /// configuration (tests use it to plant a misbehaving check).
    pub fn with_checks(config: Config, checks: Checks) -> Self {
        let redactor = telemetry::Redactor::new(config.secrets());
        let metrics = config
            .emit_metrics
            .then(|| config.metrics_namespace.clone());
        let evaluator = Evaluator::new(checks, config.timeout, config.cache_ttl, redactor, metrics);
        Self { config, evaluator }
    }

    /// Opens the database connection in the background (never blocks).
    pub fn warm_up(&self) {
        if let Some(db) = self.evaluator.database() {
            db.warm_up();
        }
    }
}
