//! One file per dependency. A check only *observes*: it returns a
//! [`CheckOutcome`] and never decides the overall status, the deadline, or
//! the HTTP answer — [`crate::health`] and [`crate::http`] own those.

pub mod database;
pub mod supabase;
pub mod workers;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::db::Session;

/// A health check. `session` is the evaluation's shared database session
/// (`None` when no database is configured). A check must not decide the
/// deadline: the evaluator cancels it when time is up.
pub trait Check: Send + Sync {
    fn run<'a>(&'a self, session: Option<&'a Session<'a>>) -> BoxFuture<'a, CheckOutcome>;
}

/// The outcome for a database-backed check when no database is configured.
pub(crate) fn no_database() -> CheckOutcome {
    CheckOutcome::unhealthy(Reason::NotConfigured, "no database configured")
}

/// The parts of MeshHook that `/health` reports on, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Database,
    Supabase,
    Workers,
}

impl Component {
    pub const ALL: [Component; 3] = [Self::Database, Self::Supabase, Self::Workers];

    pub fn name(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Supabase => "supabase",
            Self::Workers => "workers",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Health of one component or of the whole. Ordered from best to worst, so
/// `max` picks the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a component is not healthy: a fixed vocabulary (CONTRACT §4) that is
/// safe to show to an authorised caller, unlike raw error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Timeout,
    Unreachable,
    Tls,
    Auth,
    QueryFailed,
    SchemaMissing,
    BadStatus,
    BadResponse,
    RateLimited,
    StaleWorkers,
    TooFewWorkers,
    NotConfigured,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::QueryFailed => "query_failed",
            Self::SchemaMissing => "schema_missing",
            Self::BadStatus => "bad_status",
            Self::BadResponse => "bad_response",
            Self::RateLimited => "rate_limited",
            Self::StaleWorkers => "stale_workers",
            Self::TooFewWorkers => "too_few_workers",
            Self::NotConfigured => "not_configured",
        }
    }
}

/// Extra facts a check may report in the verbose body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Facts {
    #[default]
    None,
    /// Per-service status, in configured order.
    Services(Vec<(String, Status)>),
    Workers {
        alive: u64,
        stale: u64,
        min_alive: u64,
    },
}

/// What one check observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub status: Status,
    pub reason: Option<Reason>,
    pub facts: Facts,
    /// Internal error text for logs only (never in a response body).
    pub error: Option<String>,
}

impl CheckOutcome {
    pub fn healthy() -> Self {
        Self {
            status: Status::Healthy,
            reason: None,
            facts: Facts::None,
            error: None,
        }
    }

    pub fn unhealthy(reason: Reason, error: impl Into<String>) -> Self {
        Self {
            status: Status::Unhealthy,
            reason: Some(reason),
            facts: Facts::None,
            error: Some(error.into()),
        }
    }

    pub fn with_facts(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self
    }
}
