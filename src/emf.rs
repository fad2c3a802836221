//! CloudWatch Embedded Metric Format (EMF) lines, printed in Lambda mode
//! once per evaluation (not per request: a cached answer measured nothing).
//!
//! `Healthy` (1 only when healthy) and `Unhealthy` (1 only when unhealthy)
//! are overall and have no dimension: a page watches `Unhealthy`, so a
//! degraded answer (a 200) never pages. `ComponentHealthy` (1/0) and
//! `LatencyMs` carry the dimension `Component`. A dimension has one value
//! per EMF document, so each component gets a line of its own; the overall
//! pair rides on the first, so it is counted exactly once per evaluation.
//! A component may add metric sets of its own (the queue's, per `Queue`):
//! each is one more document with its own dimension.

use std::time::UNIX_EPOCH;

use crate::evaluator::EvaluationListener;
use crate::figures::{MetricSet, Unit};
use crate::json_text::{array, quoted, Object};
use crate::outcome::Status;
use crate::report::Report;

pub const DEFAULT_NAMESPACE: &str = "MeshHook/Health";

/// A CloudWatch namespace as CloudWatch accepts it: 1 to 255 of letters,
/// digits and `. - _ / # :` or space, not starting with `AWS/` (AWS's own).
/// CloudWatch drops EMF documents with any other silently, so say so at
/// start-up instead.
pub fn namespace(raw: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if raw.is_empty() || raw.len() > 255 || !raw.chars().all(allowed) {
        return Err(
            "expected 1 to 255 of letters, digits, space and . - _ / # : (a CloudWatch namespace)"
                .into(),
        );
    }
    if raw.starts_with("AWS/") {
        return Err("must not start with AWS/ (reserved for AWS's own metrics)".into());
    }
    Ok(raw.to_owned())
}

fn healthy(status: Status) -> u8 {
    u8::from(status == Status::Healthy)
}

/// The EMF documents for one evaluation, one JSON text per line: the
/// overall pair and the first component in the first document, a document
/// per further component, then one per component figure set.
pub fn lines(report: &Report, namespace: &str) -> Vec<String> {
    Emf::new(namespace)
        .text(report)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The documents of a process's evaluations, written as text
/// ([`json_text`]) with their fixed directives written once.
struct Emf {
    namespace: String,
    /// The directive of `Healthy` and `Unhealthy`, without dimensions.
    overall: String,
    /// The directive of each component's `ComponentHealthy` and `LatencyMs`.
    per_component: String,
}

impl Emf {
    fn new(namespace: &str) -> Self {
        let overall = directive(
            namespace,
            &[],
            &[("Healthy", "None"), ("Unhealthy", "None")],
        );
        let per_component = directive(
            namespace,
            &["Component"],
            &[("ComponentHealthy", "None"), ("LatencyMs", "Milliseconds")],
        );
        Self {
            namespace: namespace.to_owned(),
            overall,
            per_component,
        }
    }

    /// Every document of `report`'s evaluation, each followed by a newline.
    fn text(&self, report: &Report) -> String {
        let timestamp = report
            .checked_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut out = String::with_capacity(512 * (1 + report.components.len()));
        let overall = |doc: &mut Object| {
            doc.integer("Healthy", healthy(report.status).into())
                .integer("Unhealthy", (report.status == Status::Unhealthy).into());
        };
        if report.components.is_empty() {
            let mut doc = document(timestamp, &[&self.overall]);
            overall(&mut doc);
            line(&mut out, doc);
        }
        for (i, c) in report.components.iter().enumerate() {
            let mut doc = if i == 0 {
                let mut doc = document(timestamp, &[&self.overall, &self.per_component]);
                overall(&mut doc);
                doc
            } else {
                document(timestamp, &[&self.per_component])
            };
            doc.string("Component", c.name())
                .integer("ComponentHealthy", healthy(c.outcome.verdict.status).into())
                .number("LatencyMs", crate::report::round_ms(c.latency));
            line(&mut out, doc);
        }
        for set in report.components.iter().flat_map(|c| &c.outcome.metrics) {
            if let Some(doc) = self.figures(timestamp, set) {
                line(&mut out, doc);
            }
        }
        out
    }

    /// One component's own figures that go to CloudWatch, under their
    /// dimension; `None` when none of them does.
    fn figures(&self, timestamp: u64, set: &MetricSet) -> Option<Object> {
        let (dimension, value) = &set.dimension;
        let mut values: Vec<(&str, Unit, f64)> = Vec::new();
        for (figure, number) in &set.values {
            // One member per name: a later figure of the same name wins.
            if let Some(name) = figure.emf {
                values.retain(|(seen, _, _)| *seen != name);
                values.push((name, figure.unit, *number));
            }
        }
        if values.is_empty() {
            return None;
        }
        let units: Vec<(&str, &str)> = values
            .iter()
            .map(|(name, unit, _)| (*name, unit.as_str()))
            .collect();
        let directive = directive(&self.namespace, &[dimension], &units);
        let mut doc = document(timestamp, &[&directive]);
        doc.string(dimension, value);
        for (name, _, number) in &values {
            doc.number(name, *number);
        }
        Some(doc)
    }
}

/// A `CloudWatchMetrics` directive, as JSON: the namespace, the dimensions
/// and (name, unit) pairs.
fn directive(namespace: &str, dimensions: &[&str], metrics: &[(&str, &str)]) -> String {
    let dimensions: Vec<String> = dimensions.iter().map(|d| quoted(d)).collect();
    let metrics: Vec<String> = metrics
        .iter()
        .map(|(name, unit)| {
            Object::new()
                .string("Name", name)
                .string("Unit", unit)
                .finish()
        })
        .collect();
    Object::new()
        .string("Namespace", namespace)
        .raw(
            "Dimensions",
            &array([array(dimensions.iter().map(String::as_str)).as_str()]),
        )
        .raw("Metrics", &array(metrics.iter().map(String::as_str)))
        .finish()
}

/// A document with its `_aws` member (the timestamp and the directives)
/// written; its metrics follow.
fn document(timestamp: u64, directives: &[&String]) -> Object {
    let aws = Object::new()
        .integer("Timestamp", timestamp)
        .raw(
            "CloudWatchMetrics",
            &array(directives.iter().map(|d| d.as_str())),
        )
        .finish();
    let mut doc = Object::new();
    doc.raw("_aws", &aws);
    doc
}

/// `doc`, finished, as a line of `out`.
fn line(out: &mut String, mut doc: Object) {
    out.push_str(&doc.finish());
    out.push('\n');
}

/// Prints each evaluation's lines to stdout in one write, so that
/// concurrent output cannot split a document (CloudWatch needs each alone
/// on its line).
pub struct EmfMetrics {
    emf: Emf,
}

impl EmfMetrics {
    pub fn new(namespace: &str) -> Self {
        Self {
            emf: Emf::new(namespace),
        }
    }
}

impl EvaluationListener for EmfMetrics {
    fn evaluated(&self, report: &std::sync::Arc<Report>) {
        use std::io::Write;
        let text = self.emf.text(report);
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use serde_json::{json, Value};

    use super::*;
    use crate::figures::{Figure, MetricSet};
    use crate::outcome::{CheckOutcome, Reason, Verdict};
    use crate::report::ComponentReport;

    fn part(name: &'static str, outcome: CheckOutcome, ms: u64) -> ComponentReport {
        ComponentReport {
            enabled: crate::component::Enabled::for_test(name, true),
            outcome,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn one_document_per_component_with_healthy_once() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_809_600_123);
        let report = Report::new(
            vec![
                part("database", CheckOutcome::from(Verdict::healthy()), 1),
                part(
                    "workers",
                    CheckOutcome::from(Verdict::unhealthy(Reason::Timeout, "x")),
                    150,
                ),
            ],
            at,
        );
        let docs: Vec<Value> = lines(&report, "NS")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["_aws"]["Timestamp"], 1_795_809_600_123u64);
        assert_eq!(
            (&docs[0]["Healthy"], &docs[0]["Unhealthy"]),
            (&json!(0), &json!(1))
        );
        assert_eq!(
            (
                docs[0]["Component"].as_str(),
                docs[0]["ComponentHealthy"].as_u64()
            ),
            (Some("database"), Some(1))
        );
        assert!(docs[1].get("Healthy").is_none() && docs[1].get("Unhealthy").is_none());
        assert_eq!(
            (
                docs[1]["ComponentHealthy"].as_u64(),
                docs[1]["LatencyMs"].as_f64()
            ),
            (Some(0), Some(150.0))
        );
        let empty = Report::new(Vec::new(), SystemTime::now());
        assert_eq!(lines(&empty, "NS").len(), 1);
    }

    #[test]
    fn degraded_is_neither_healthy_nor_unhealthy() {
        let overall = |outcome: CheckOutcome| {
            let report = Report::new(vec![part("workers", outcome, 1)], SystemTime::now());
            let doc: Value = serde_json::from_str(&lines(&report, "NS")[0]).unwrap();
            (doc["Healthy"].clone(), doc["Unhealthy"].clone())
        };
        assert_eq!(
            overall(CheckOutcome::from(Verdict::healthy())),
            (json!(1), json!(0))
        );
        assert_eq!(
            overall(CheckOutcome::from(Verdict::of(
                Status::Degraded,
                Reason::StaleWorkers,
                "x"
            ))),
            (json!(0), json!(0))
        );
        assert_eq!(
            overall(CheckOutcome::from(Verdict::unhealthy(
                Reason::TooFewWorkers,
                "x"
            ))),
            (json!(0), json!(1))
        );
    }

    const READY: Figure = Figure {
        emf: Some("QueueReady"),
        prometheus: Some("queue_ready_messages"),
        label: Some("queue"),
        help: "h",
        unit: Unit::Count,
    };
    const PROMETHEUS_ONLY: Figure = Figure {
        emf: None,
        prometheus: Some("workers_alive"),
        label: Some("kind"),
        help: "h",
        unit: Unit::Count,
    };

    #[test]
    fn a_components_metric_sets_are_documents_of_their_own() {
        let mut outcome = CheckOutcome::from(Verdict::healthy());
        outcome.metrics = vec![
            MetricSet {
                dimension: ("Queue", "jobs".into()),
                values: vec![(&READY, 3.0), (&PROMETHEUS_ONLY, 1.0)],
            },
            MetricSet {
                dimension: ("Kind", "other".into()),
                values: vec![(&PROMETHEUS_ONLY, 1.0)],
            },
        ];
        let report = Report::new(vec![part("queue", outcome, 1)], SystemTime::now());
        let docs: Vec<Value> = lines(&report, "NS")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["Queue"], "jobs");
        assert_eq!(docs[1]["QueueReady"], 3.0);
        assert!(docs[1].get("workers_alive").is_none(), "{}", docs[1]);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Queue"]])
        );
        assert!(docs[1].get("Healthy").is_none());
    }

    #[test]
    fn documents_are_the_json_cloudwatch_reads_with_values_escaped() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_809_600_123);
        let mut outcome = CheckOutcome::from(Verdict::healthy());
        outcome.metrics = vec![MetricSet {
            dimension: ("Queue", "a \"quoted\\ name\n".into()),
            values: vec![(&READY, f64::NAN), (&READY, 2.5)],
        }];
        let report = Report::new(vec![part("queue", outcome, 12)], at);
        let docs: Vec<Value> = lines(&report, "Mesh/Hook: health")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            docs,
            vec![
                json!({
                    "_aws": {"Timestamp": 1_795_809_600_123u64, "CloudWatchMetrics": [
                        {"Namespace": "Mesh/Hook: health", "Dimensions": [[]], "Metrics": [
                            {"Name": "Healthy", "Unit": "None"},
                            {"Name": "Unhealthy", "Unit": "None"}]},
                        {"Namespace": "Mesh/Hook: health", "Dimensions": [["Component"]], "Metrics": [
                            {"Name": "ComponentHealthy", "Unit": "None"},
                            {"Name": "LatencyMs", "Unit": "Milliseconds"}]}]},
                    "Healthy": 1, "Unhealthy": 0,
                    "Component": "queue", "ComponentHealthy": 1, "LatencyMs": 12.0,
                }),
                json!({
                    "_aws": {"Timestamp": 1_795_809_600_123u64, "CloudWatchMetrics": [
                        {"Namespace": "Mesh/Hook: health", "Dimensions": [["Queue"]], "Metrics": [
                            {"Name": "QueueReady", "Unit": "Count"}]}]},
                    "Queue": "a \"quoted\\ name\n", "QueueReady": 2.5,
                }),
            ]
        );
    }
}
