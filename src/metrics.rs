//! CloudWatch Embedded Metric Format (EMF) lines, printed in Lambda mode
//! once per evaluation (not per request: a cached answer measured nothing).
//!
//! `Healthy` (1/0, overall) has no dimension. `ComponentHealthy` (1/0) and
//! `LatencyMs` carry the dimension `Component`. A dimension has one value
//! per EMF document, so each component gets a line of its own; `Healthy`
//! rides on the first, so it is counted exactly once per evaluation.
//! A component may add metric sets of its own (the queue's, per `Queue`):
//! each is one more document with its own dimension.

use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};

use crate::health::EvaluationListener;
use crate::outcome::Status;
use crate::report::Report;

pub const DEFAULT_NAMESPACE: &str = "MeshHook/Health";

fn healthy(status: Status) -> u8 {
    u8::from(status == Status::Healthy)
}

/// The EMF documents for one evaluation, one JSON text per line.
pub fn lines(report: &Report, namespace: &str) -> Vec<String> {
    let timestamp = report
        .checked_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let overall = json!({
        "Namespace": namespace,
        "Dimensions": [[]],
        "Metrics": [{"Name": "Healthy", "Unit": "None"}],
    });
    let per_component = json!({
        "Namespace": namespace,
        "Dimensions": [["Component"]],
        "Metrics": [
            {"Name": "ComponentHealthy", "Unit": "None"},
            {"Name": "LatencyMs", "Unit": "Milliseconds"},
        ],
    });
    let document = |directives: Vec<&Value>, members: Map<String, Value>| {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
        );
        root.extend(members);
        Value::Object(root).to_string()
    };
    let overall_members = || {
        let mut m = Map::new();
        m.insert("Healthy".into(), json!(healthy(report.status)));
        m
    };
    if report.components.is_empty() {
        return vec![document(vec![&overall], overall_members())];
    }
    let mut out: Vec<String> = report
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut members = if i == 0 {
                overall_members()
            } else {
                Map::new()
            };
            members.insert("Component".into(), json!(c.name));
            members.insert("ComponentHealthy".into(), json!(healthy(c.outcome.status)));
            members.insert(
                "LatencyMs".into(),
                json!(crate::report::round_ms(c.latency)),
            );
            let directives = if i == 0 {
                vec![&overall, &per_component]
            } else {
                vec![&per_component]
            };
            document(directives, members)
        })
        .collect();
    for set in report.components.iter().flat_map(|c| &c.outcome.metrics) {
        let (dimension, value) = &set.dimension;
        let directive = json!({
            "Namespace": namespace,
            "Dimensions": [[dimension]],
            "Metrics": set
                .values
                .iter()
                .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                .collect::<Vec<_>>(),
        });
        let mut members = Map::new();
        members.insert((*dimension).to_owned(), json!(value));
        for (name, _, number) in &set.values {
            members.insert((*name).to_owned(), json!(number));
        }
        out.push(document(vec![&directive], members));
    }
    out
}

/// Prints each evaluation's lines to stdout in one write, so that
/// concurrent output cannot split a document (CloudWatch needs each alone
/// on its line).
pub struct EmfMetrics {
    pub namespace: String,
}

impl EvaluationListener for EmfMetrics {
    fn evaluated(&self, report: &Report) {
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
    use crate::outcome::{CheckOutcome, MetricSet, Reason, Unit};
    use crate::report::ComponentReport;

    fn part(name: &'static str, outcome: CheckOutcome, ms: u64) -> ComponentReport {
        ComponentReport {
            name,
            critical: true,
            outcome,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn one_document_per_component_with_healthy_once() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_809_600_123);
        let report = Report::new(
            vec![
                part("database", CheckOutcome::healthy(), 1),
                part(
                    "workers",
                    CheckOutcome::unhealthy(Reason::Timeout, "x"),
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
        assert_eq!(docs[0]["Healthy"], 0);
        assert_eq!(
            (
                docs[0]["Component"].as_str(),
                docs[0]["ComponentHealthy"].as_u64()
            ),
            (Some("database"), Some(1))
        );
        assert!(docs[1].get("Healthy").is_none());
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
    fn a_components_metric_sets_are_documents_of_their_own() {
        let mut outcome = CheckOutcome::healthy();
        outcome.metrics = vec![MetricSet {
            dimension: ("Queue", "jobs".into()),
            values: vec![("QueueReady", Unit::Count, 3.0)],
        }];
        let report = Report::new(vec![part("queue", outcome, 1)], SystemTime::now());
        let docs: Vec<Value> = lines(&report, "NS")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["Queue"], "jobs");
        assert_eq!(docs[1]["QueueReady"], 3.0);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Queue"]])
        );
        assert!(docs[1].get("Healthy").is_none());
    }
}
