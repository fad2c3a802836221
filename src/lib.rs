//! # meshhook-health
//!
//! The public `GET /health` of MeshHook: whether its Postgres database, its
//! Supabase services and its worker processes are healthy, and which version
//! runs — answered within a deadline whatever the dependencies do.
//!
//! The request path reads top to bottom, and no module reaches back up:
//!
//! ```text
//! lambda.rs / serve.rs   transports: Lambda events, plain HTTP/1.1
//!         │
//!      http.rs           routing, methods, status codes, headers (shared)
//!         │
//!     health.rs          Evaluator: deadline, single-flight cache, aggregation
//!         │
//!      checks/           database (SELECT 1), workers (heartbeats), supabase
//!         │
//!   db.rs, tls.rs        pool + pooler-safe queries, libpq sslmode semantics
//!         │
//!     report.rs          public and verbose JSON bodies
//! ```
//!
//! [`config`] turns the environment into typed settings once at start-up
//! ([`secrets`] fills in `DATABASE_URL` from Secrets Manager when asked);
//! [`telemetry`] sets up logs and redacts secrets; [`metrics`] prints the
//! CloudWatch EMF lines of Lambda mode; [`heartbeat`] holds the `heartbeat`
//! and `migrate` commands for workers; [`shutdown`] waits for SIGTERM/SIGINT.

pub mod checks;
pub mod config;
pub mod db;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod report;
pub mod secrets;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
mod tls;

use checks::supabase::SupabaseCheck;
use checks::workers::WorkersCheck;
use checks::Component;
use config::Config;
use health::{Checks, Evaluator};

/// A start-up failure that is not a configuration value's fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not build the HTTPS client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

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
        let enabled = |c| config.components.contains(&c);
        let database = config.database.as_ref().map(db::Database::new);
        let workers =
            enabled(Component::Workers).then(|| WorkersCheck::new(config.workers.clone()));
        let supabase = match &config.supabase {
            Some(settings) => Some(SupabaseCheck::new(
                tls::https_client(&config.version)?,
                settings.clone(),
            )),
            None => None,
        };
        let checks = Checks::standard(
            &config.components,
            &config.noncritical,
            database,
            workers,
            supabase,
        );
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
