//! The exposition of an evaluation, without a server.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::config::Config;
use crate::outcome::{CheckOutcome, Reason, Verdict};
use crate::report::ComponentReport;

fn configured(pairs: &[(&str, &str)]) -> Config {
    let mut env = vec![
        ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
        ("HEALTH_METRICS_TOKEN", "t"),
    ];
    env.extend_from_slice(pairs);
    Config::from_source(&crate::env::pairs(&env)).unwrap()
}

/// The outcome each enabled component's check would report, with figures.
fn report(config: &Config, status_of_workers: Status) -> Report {
    let components = config
        .components
        .iter()
        .map(|c| {
            let mut outcome = match (c.enabled.name(), status_of_workers) {
                ("workers", Status::Unhealthy) => CheckOutcome::from(Verdict::unhealthy(
                    Reason::TooFewWorkers,
                    "secret error text",
                )),
                _ => CheckOutcome::from(Verdict::healthy()),
            };
            outcome.metrics = c
                .enabled
                .component
                .figures
                .iter()
                .map(|f| crate::figures::MetricSet {
                    dimension: ("Queue", "workflow_jobs".into()),
                    values: vec![(f, 2.0)],
                })
                .collect();
            ComponentReport {
                enabled: c.enabled,
                outcome,
                latency: Duration::from_millis(3),
            }
        })
        .collect();
    Report::new(components, SystemTime::now())
}

const ALL: &str = "database,workers,queue,runs,partitions";

#[test]
fn every_metric_has_help_and_type_in_both_formats() {
    let config = configured(&[("HEALTH_COMPONENTS", ALL)]);
    let exposition = Exposition::new(&config.components);
    exposition.evaluated(&Arc::new(report(&config, Status::Healthy)));
    let mut names = vec!["status", "component_status", "check_duration_seconds"];
    for c in &config.components {
        names.extend(
            c.enabled
                .component
                .figures
                .iter()
                .filter_map(|f| f.prometheus),
        );
    }
    assert_eq!(names.len(), 17, "{names:?}");
    let classic = exposition.encode(false);
    let openmetrics = exposition.encode(true);
    for name in names {
        let name = format!("meshhook_health_{name}");
        for text in [&classic, &openmetrics] {
            assert!(
                text.contains(&format!("\n# HELP {name} "))
                    || text.starts_with(&format!("# HELP {name} ")),
                "{name}"
            );
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
    assert!(classic.contains("# TYPE meshhook_health_evaluations_total counter\n"));
    assert!(openmetrics.contains("# TYPE meshhook_health_evaluations counter\n"));
    assert!(openmetrics.ends_with("# EOF\n") && !classic.contains("# EOF"));
    assert!(classic.contains("meshhook_health_queue_ready_messages{queue=\"workflow_jobs\"} 2"));
    assert!(classic.contains("meshhook_health_runs_in_flight 2"));
}

#[test]
fn an_evaluation_replaces_the_last_ones_gauges_and_adds_to_the_counts() {
    let config = configured(&[("HEALTH_COMPONENTS", "workers,queue")]);
    let exposition = Exposition::new(&config.components);
    exposition.evaluated(&Arc::new(report(&config, Status::Healthy)));
    let mut failed = report(&config, Status::Unhealthy);
    // The queue could not be read this time: its figures go.
    failed.components[1].outcome.metrics.clear();
    exposition.evaluated(&Arc::new(failed));
    let text = exposition.encode(false);
    for line in [
        "meshhook_health_status{status=\"unhealthy\"} 1",
        "meshhook_health_status{status=\"healthy\"} 0",
        "meshhook_health_component_status{component=\"workers\",status=\"unhealthy\"} 1",
        "meshhook_health_component_status{component=\"queue\",status=\"healthy\"} 1",
        "meshhook_health_evaluations_total{status=\"healthy\"} 1",
        "meshhook_health_evaluations_total{status=\"unhealthy\"} 1",
        "meshhook_health_evaluations_total{status=\"degraded\"} 0",
        "meshhook_health_check_duration_seconds_count{component=\"queue\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    // In a fixed order: components as in the report, statuses best first.
    let order: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("meshhook_health_component_status{"))
        .collect();
    assert_eq!(
        order,
        [
            "meshhook_health_component_status{component=\"workers\",status=\"healthy\"} 0",
            "meshhook_health_component_status{component=\"workers\",status=\"degraded\"} 0",
            "meshhook_health_component_status{component=\"workers\",status=\"unhealthy\"} 1",
            "meshhook_health_component_status{component=\"queue\",status=\"healthy\"} 1",
            "meshhook_health_component_status{component=\"queue\",status=\"degraded\"} 0",
            "meshhook_health_component_status{component=\"queue\",status=\"unhealthy\"} 0",
        ]
    );
    // A family without a series is left out, HELP and TYPE too.
    assert!(
        !text.contains("meshhook_health_queue_ready_messages"),
        "{text}"
    );
    assert!(!text.contains("secret error text"));
}

#[test]
fn only_enabled_components_are_declared() {
    let config = configured(&[("HEALTH_COMPONENTS", "database")]);
    let exposition = Exposition::new(&config.components);
    exposition.evaluated(&Arc::new(report(&config, Status::Healthy)));
    let text = exposition.encode(false);
    assert!(text.contains("meshhook_health_database_xid_age"));
    assert!(
        !text.contains("workers_alive") && !text.contains("queue_"),
        "{text}"
    );
}

#[test]
fn openmetrics_only_when_accept_prefers_it() {
    let wants = |accept: Option<&str>| {
        wants_openmetrics(
            accept
                .map(HeaderValue::from_str)
                .transpose()
                .unwrap()
                .as_ref(),
        )
    };
    // Prometheus 2.x and 3.x (which asks for protobuf first).
    assert!(wants(Some(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )));
    assert!(wants(Some(
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )));
    assert!(wants(Some("Application/OpenMetrics-Text")));
    assert!(!wants(None));
    assert!(!wants(Some("*/*")));
    assert!(!wants(Some("text/plain;version=0.0.4")));
    assert!(!wants(Some(
        "text/plain, application/openmetrics-text;q=0.5"
    )));
    assert!(!wants(Some("application/openmetrics-text;q=0")));
    assert!(wants(Some(
        "text/plain;q=0.4, application/openmetrics-text;q=0.5"
    )));
}
