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

use serde_json::{json, Map, Value};

use crate::evaluator::EvaluationListener;
use crate::figures::{MetricSet, Unit};
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
    let emf = Emf {
        namespace,
        timestamp: report
            .checked_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    let overall = emf.directive(&[], &[("Healthy", "None"), ("Unhealthy", "None")]);
    let mut overall_members = Map::new();
    overall_members.insert("Healthy".into(), json!(healthy(report.status)));
    overall_members.insert(
        "Unhealthy".into(),
        json!(u8::from(report.status == Status::Unhealthy)),
    );
    if report.components.is_empty() {
        return vec![emf.document(vec![&overall], overall_members)];
    }
    let per_component = emf.directive(
        &["Component"],
        &[("ComponentHealthy", "None"), ("LatencyMs", "Milliseconds")],
    );
    let mut out = Vec::new();
    for (i, c) in report.components.iter().enumerate() {
        let (mut members, directives) = if i == 0 {
            (overall_members.clone(), vec![&overall, &per_component])
        } else {
            (Map::new(), vec![&per_component])
        };
        members.insert("Component".into(), json!(c.name()));
        members.insert(
            "ComponentHealthy".into(),
            json!(healthy(c.outcome.verdict.status)),
        );
        members.insert(
            "LatencyMs".into(),
            json!(crate::report::round_ms(c.latency)),
        );
        out.push(emf.document(directives, members));
    }
    out.extend(
        report
            .components
            .iter()
            .flat_map(|c| &c.outcome.metrics)
            .filter_map(|set| emf.figures(set)),
    );
    out
}

/// The parts every document of one evaluation shares.
struct Emf<'a> {
    namespace: &'a str,
    timestamp: u64,
}

impl Emf<'_> {
    /// A `CloudWatchMetrics` directive: the dimensions and (name, unit) pairs.
    fn directive(&self, dimensions: &[&str], metrics: &[(&str, &str)]) -> Value {
        json!({
            "Namespace": self.namespace,
            "Dimensions": [dimensions],
            "Metrics": metrics
                .iter()
                .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
                .collect::<Vec<_>>(),
        })
    }

    fn document(&self, directives: Vec<&Value>, members: Map<String, Value>) -> String {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": self.timestamp, "CloudWatchMetrics": directives}),
        );
        root.extend(members);
        Value::Object(root).to_string()
    }

    /// One component's own figures that go to CloudWatch, under their
    /// dimension; `None` when none of them does.
    fn figures(&self, set: &MetricSet) -> Option<String> {
        let (dimension, value) = &set.dimension;
        let values: Vec<(&str, Unit, f64)> = set
            .values
            .iter()
            .filter_map(|(figure, number)| Some((figure.emf?, figure.unit, *number)))
            .collect();
        if values.is_empty() {
            return None;
        }
        let units: Vec<(&str, &str)> = values
            .iter()
            .map(|(name, unit, _)| (*name, unit.as_str()))
            .collect();
        let directive = self.directive(&[dimension], &units);
        let mut members = Map::new();
        members.insert((*dimension).to_owned(), json!(value));
        for (name, _, number) in &values {
            members.insert((*name).to_owned(), json!(number));
        }
        Some(self.document(vec![&directive], members))
    }
}

/// Prints each evaluation's lines to stdout in one write, so that
/// concurrent output cannot split a document (CloudWatch needs each alone
/// on its line).
pub struct EmfMetrics {
    pub namespace: String,
}

impl EvaluationListener for EmfMetrics {
    fn evaluated(&self, report: &std::sync::Arc<Report>) {
        use std::io::Write;
        let mut text = lines(report, &self.namespace).join("\n");
        text.push('\n');
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

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
}
