//! The shared vocabulary of a health check: [`Status`], [`Reason`] and what
//! one check observed, [`CheckOutcome`].
//!
//! A leaf: it imports nothing of this crate. Components produce these
//! values; the evaluator, the bodies, the logs and the metrics read them.

use serde::{Serialize, Serializer};

use crate::figures::MetricSet;

/// Declares a fieldless enum whose variants each name their text once: the
/// enum, `ALL` (every variant, in declared order), `as_str`, `Display` and
/// a `Serialize` that writes that text.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every value, in the documented order.
            pub const ALL: [Self; [$($text),*].len()] = [$(Self::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// Health of one component or of the whole. Ordered from best to worst, so
    /// `max` picks the worst.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Status {
        #[default]
        Healthy = "healthy",
        Degraded = "degraded",
        Unhealthy = "unhealthy",
    }
}

named_enum! {
    /// Why a component is not healthy: a fixed vocabulary (`docs/API.md`,
    /// "Reasons") that is safe to show to an authorised caller, unlike raw
    /// error text.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        Timeout = "timeout",
        Unreachable = "unreachable",
        Tls = "tls",
        Auth = "auth",
        QueryFailed = "query_failed",
        SchemaMissing = "schema_missing",
        BadStatus = "bad_status",
        BadResponse = "bad_response",
        RateLimited = "rate_limited",
        StaleWorkers = "stale_workers",
        TooFewWorkers = "too_few_workers",
        QueueBacklog = "queue_backlog",
        QueueStalled = "queue_stalled",
        DeadLetters = "dead_letters",
        RunsStalled = "runs_stalled",
        EngineStalled = "engine_stalled",
        RowsHidden = "rows_hidden",
        PartitionMissing = "partition_missing",
        PartitionEnding = "partition_ending",
        ReadOnly = "read_only",
        ConnectionsNearLimit = "connections_near_limit",
        ConnectionsExhausted = "connections_exhausted",
        WraparoundNear = "wraparound_near",
        SizeNearLimit = "size_near_limit",
        Paused = "paused",
        OverQuota = "over_quota",
        NotConfigured = "not_configured",
        /// The check itself failed (a bug in this checker, caught): says
        /// nothing about the dependency.
        InternalError = "internal_error",
        /// MeshHook's app answered and failed (HTTP 500).
        AppError = "app_error",
        /// A 404 that is not MeshHook's own (a platform's page, a wrong address).
        NotMeshhook = "not_meshhook",
        /// A live-logs table is not in the publication Realtime reads.
        NotPublished = "not_published",
        /// A tenant table, or a table the browser's roles may read, has
        /// row-level security off.
        RlsDisabled = "rls_disabled",
        /// A view the browser's roles may read reads a table with row-level
        /// security as its owner, past the table's policies.
        RlsBypassed = "rls_bypassed",
        /// A tenant table has row-level security on and no policy.
        NoPolicy = "no_policy",
        /// `authenticated` may not read a tenant table at all.
        NotGranted = "not_granted",
    }
}

/// The version reported when neither `MESHHOOK_VERSION` nor a worker tells
/// it, and the name under which workers that report none are counted.
pub const UNKNOWN_VERSION: &str = "unknown";

/// Extra facts a component reports in the verbose body, as `(key, value)`
/// entries in the order they are shown (counts, per-service statuses — never
/// hosts, users or error text).
pub type Facts = Vec<(&'static str, serde_json::Value)>;

/// One verdict, whatever gave it: a rule over a reading, one queue or
/// table, one Supabase service, a whole component. Its status, the reason
/// when it is not healthy, and text for the log (never for a body). A
/// healthy verdict may carry text too: a reading that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub status: Status,
    pub reason: Option<Reason>,
    pub text: Option<String>,
}

impl Verdict {
    pub fn healthy() -> Self {
        Self::default()
    }

    pub fn degraded(reason: Reason, text: impl Into<String>) -> Self {
        Self::of(Status::Degraded, reason, text)
    }

    pub fn unhealthy(reason: Reason, text: impl Into<String>) -> Self {
        Self::of(Status::Unhealthy, reason, text)
    }

    pub fn of(status: Status, reason: Reason, text: impl Into<String>) -> Self {
        Self {
            status,
            reason: Some(reason),
            text: Some(text.into()),
        }
    }

    /// Healthy, with a note for the log: nothing was found wrong, but
    /// something could not be looked at.
    pub fn note(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// The same verdict with its log text prefixed by `name: ` (whose it is).
    pub fn named(mut self, name: &str) -> Self {
        self.text = self.text.map(|text| format!("{name}: {text}"));
        self
    }
}

/// What one check observed: its verdict, and what the verbose body,
/// metrics and version report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckOutcome {
    pub verdict: Verdict,
    pub facts: Facts,
    pub metrics: Vec<MetricSet>,
    /// The MeshHook version this component saw running, if it can tell
    /// (the workers' heartbeats): the public `version` when
    /// `MESHHOOK_VERSION` is not set.
    pub meshhook_version: Option<String>,
}

impl From<Verdict> for CheckOutcome {
    fn from(verdict: Verdict) -> Self {
        Self {
            verdict,
            ..Self::default()
        }
    }
}

impl CheckOutcome {
    pub fn status(&self) -> Status {
        self.verdict.status
    }

    pub fn with_facts(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self
    }

    pub fn with_metrics(mut self, metrics: Vec<MetricSet>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// How several verdicts make one — the components of an answer, Supabase's
/// services, the watched queues or tables, the database's rules: the worst
/// status wins, the reason is the first one given with that status, and
/// every text is kept for the log. A non-critical part counts at most as
/// degraded. (Spring's `StatusAggregator`, plus reasons.)
#[derive(Debug, Default)]
pub struct Aggregate {
    status: Status,
    reason: Option<Reason>,
    texts: Vec<String>,
}

impl Aggregate {
    /// A part whose failure is the whole's.
    pub fn add(&mut self, part: Verdict) {
        if part.status > self.status {
            self.status = part.status;
            self.reason = part.reason;
        }
        self.texts.extend(part.text);
    }

    /// A part whose `unhealthy` only degrades the whole.
    pub fn add_noncritical(&mut self, mut part: Verdict) {
        part.status = part.status.min(Status::Degraded);
        self.add(part);
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The whole: status, reason, and the texts joined by `; `.
    pub fn verdict(self) -> Verdict {
        Verdict {
            status: self.status,
            reason: self.reason,
            text: (!self.texts.is_empty()).then(|| self.texts.join("; ")),
        }
    }
}

impl FromIterator<Verdict> for Aggregate {
    fn from_iter<I: IntoIterator<Item = Verdict>>(parts: I) -> Self {
        let mut all = Self::default();
        parts.into_iter().for_each(|part| all.add(part));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_serialises_as_its_text() {
        assert_eq!(
            serde_json::to_string(&Status::Unhealthy).unwrap(),
            r#""unhealthy""#
        );
        assert_eq!(
            serde_json::to_string(&Reason::ConnectionsNearLimit).unwrap(),
            r#""connections_near_limit""#
        );
        assert_eq!(Reason::ALL.len(), 35);
        assert_eq!(Reason::ALL[27].to_string(), "internal_error");
        assert_eq!(
            Status::ALL,
            [Status::Healthy, Status::Degraded, Status::Unhealthy]
        );
    }

    #[test]
    fn the_worst_wins_with_the_first_reason_given_for_it_and_every_text() {
        let mut all = Aggregate::default();
        assert_eq!(all.status(), Status::Healthy);
        all.add(Verdict::healthy());
        all.add(Verdict::degraded(Reason::StaleWorkers, "a"));
        all.add(Verdict::unhealthy(Reason::Timeout, "b"));
        all.add(Verdict {
            status: Status::Unhealthy,
            reason: Some(Reason::Auth),
            text: None,
        });
        all.add(Verdict::degraded(Reason::QueueBacklog, "c"));
        all.add(Verdict::note("d"));
        let verdict = all.verdict();
        assert_eq!(verdict.status, Status::Unhealthy);
        assert_eq!(verdict.reason, Some(Reason::Timeout));
        assert_eq!(verdict.text.as_deref(), Some("a; b; c; d"));

        assert_eq!(Aggregate::default().verdict(), Verdict::healthy());
    }

    #[test]
    fn a_noncritical_part_counts_at_most_as_degraded() {
        let down = || Verdict::unhealthy(Reason::BadStatus, "x");
        let mut all = Aggregate::default();
        all.add_noncritical(down());
        assert_eq!(all.status(), Status::Degraded);
        all.add(Verdict::degraded(Reason::Timeout, "y"));
        all.add(Verdict::unhealthy(Reason::Auth, "z"));
        let verdict = all.verdict();
        assert_eq!(
            (verdict.status, verdict.reason),
            (Status::Unhealthy, Some(Reason::Auth))
        );
        let mut all = Aggregate::default();
        all.add_noncritical(down());
        all.add(Verdict::degraded(Reason::Timeout, "y"));
        assert_eq!(all.verdict().reason, Some(Reason::BadStatus));
    }

    #[test]
    fn a_named_verdict_says_whose_text_it_is() {
        assert_eq!(
            Verdict::unhealthy(Reason::Auth, "HTTP 401")
                .named("rest")
                .text
                .as_deref(),
            Some("rest: HTTP 401")
        );
        assert_eq!(Verdict::healthy().named("rest").text, None);
    }
}
