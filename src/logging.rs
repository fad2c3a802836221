//! Logging set-up and the one log event per evaluation.
//!
//! Logs go to stderr (so `check` keeps stdout for the JSON body; Lambda
//! captures both streams). Error text from libraries passes through a
//! [`Redactor`] first, so no password, key or token reaches a log.

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

use crate::evaluator::EvaluationListener;
use crate::json_text::Object;
use crate::outcome::Status;
use crate::report::{round_ms, Report};

/// Installs the global subscriber: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`
/// or `HEALTH_LOG_FORMAT=json`; level from `AWS_LAMBDA_LOG_LEVEL`, then
/// `RUST_LOG`, else info.
pub fn init() {
    let var = |name| {
        std::env::var(name)
            .ok()
            .filter(|v: &String| !v.trim().is_empty())
    };
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json"))
        || var("HEALTH_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json"));
    let filter = match (var("AWS_LAMBDA_LOG_LEVEL"), var("RUST_LOG")) {
        (Some(level), _) => Targets::new().with_default(lambda_level(&level)),
        (None, Some(directives)) => directives
            .parse::<Targets>()
            .unwrap_or_else(|_| Targets::new().with_default(Level::INFO)),
        (None, None) => Targets::new().with_default(Level::INFO),
    };
    // The AWS SDK's TRACE events print response bodies — for Secrets Manager,
    // the secret. Its crates log at DEBUG at most, whatever was asked.
    let filter = [
        "aws_smithy_runtime",
        "aws_smithy_http",
        "aws_config",
        "aws_runtime",
        "aws_sdk_secretsmanager",
        "aws_sdk_sts",
    ]
    .into_iter()
    .fold(filter, |filter, target| {
        let level = filter
            .default_level()
            .unwrap_or(LevelFilter::INFO)
            .min(LevelFilter::DEBUG);
        filter.with_target(target, level)
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init` fails only if a subscriber is already set (tests): keep it.
    if json {
        let _ = registry.with(fmt.json().flatten_event(true)).try_init();
    } else {
        let _ = registry.with(fmt).try_init();
    }
}

/// Lambda's advanced logging controls name levels TRACE…FATAL.
fn lambda_level(level: &str) -> LevelFilter {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

/// Replaces known secret values in text with `[redacted]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Longest first, so a secret that contains another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// Writes the one event per evaluation: the overall `status` and `checks`,
/// a JSON object with each component's status, latency, reason and
/// (redacted) internal error text. One field for all components keeps the
/// event's shape fixed whichever components are enabled.
pub struct EvaluationLog {
    pub redactor: Redactor,
}

impl EvaluationListener for EvaluationLog {
    fn evaluated(&self, report: &std::sync::Arc<Report>) {
        log_evaluation(report, &self.redactor);
    }
}

fn log_evaluation(report: &Report, redactor: &Redactor) {
    let checks = checks(report, redactor);
    let status = report.status.as_str();
    // A private component's finding leaves the overall status alone, not
    // the level: an operator filtering on WARN sees a leak too.
    let all_healthy = report
        .components
        .iter()
        .all(|c| c.outcome.verdict.status == Status::Healthy);
    if all_healthy {
        tracing::info!(status, checks, "health evaluated");
    } else {
        tracing::warn!(status, checks, "health evaluated");
    }
}

/// The `checks` field: a JSON object of each component's entry, keys in
/// order (components by name; `error`, `latency_ms`, `private`, `reason`,
/// `status`), written as text ([`json_text`]) at every evaluation.
fn checks(report: &Report, redactor: &Redactor) -> String {
    let mut components: Vec<_> = report.components.iter().collect();
    components.sort_by_key(|c| c.name());
    let mut checks = Object::new();
    for c in components {
        let mut entry = Object::new();
        if let Some(error) = &c.outcome.verdict.text {
            entry.string("error", &redactor.redact(error));
        }
        entry.number("latency_ms", round_ms(c.latency));
        if c.enabled.private() {
            entry.raw("private", "true");
        }
        if let Some(reason) = c.outcome.verdict.reason {
            entry.string("reason", reason.as_str());
        }
        entry.string("status", c.outcome.verdict.status.as_str());
        checks.raw(c.name(), &entry.finish());
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_removes_every_secret_longest_first() {
        let r = Redactor::new(vec!["abc".into(), "abcdef".into(), "tok".into()]);
        assert_eq!(
            r.redact("key abcdef and abc and tok"),
            "key [redacted] and [redacted] and [redacted]"
        );
        assert_eq!(Redactor::default().redact("plain"), "plain");
    }

    /// The `checks` text is the object `serde_json` writes for the same
    /// entries (what the field held when it was built as a `Value`).
    #[test]
    fn checks_is_the_json_object_of_each_components_entry() {
        use std::time::{Duration, SystemTime};

        use crate::outcome::{CheckOutcome, Reason, Verdict};
        use crate::report::ComponentReport;

        let part = |name, verdict, ms| ComponentReport {
            enabled: crate::component::Enabled::for_test(name, true),
            outcome: CheckOutcome::from(verdict),
            latency: Duration::from_micros(ms),
        };
        let report = Report::new(
            vec![
                part(
                    "workers",
                    Verdict::unhealthy(Reason::Timeout, "no \"answer\" from s3cret\n"),
                    150_049,
                ),
                part(
                    "tenancy",
                    Verdict::unhealthy(Reason::RlsDisabled, "x"),
                    12_345,
                ),
                part("database", Verdict::healthy(), 420),
            ],
            SystemTime::now(),
        );
        let redactor = Redactor::new(vec!["s3cret".into()]);
        let expected: serde_json::Map<String, serde_json::Value> = report
            .components
            .iter()
            .map(|c| {
                let mut entry = serde_json::Map::new();
                entry.insert("status".into(), c.outcome.verdict.status.as_str().into());
                entry.insert("latency_ms".into(), round_ms(c.latency).into());
                if c.enabled.private() {
                    entry.insert("private".into(), true.into());
                }
                if let Some(reason) = c.outcome.verdict.reason {
                    entry.insert("reason".into(), reason.as_str().into());
                }
                if let Some(error) = &c.outcome.verdict.text {
                    entry.insert("error".into(), redactor.redact(error).into());
                }
                (c.name().to_owned(), entry.into())
            })
            .collect();
        let text = checks(&report, &redactor);
        assert_eq!(text, serde_json::Value::Object(expected).to_string());
        assert!(
            text.contains(r#""private":true"#) && !text.contains("s3cret"),
            "{text}"
        );
    }
}
