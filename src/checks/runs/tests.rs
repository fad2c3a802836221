//! The runs' settings and judgement, without a database.

use super::*;
use crate::outcome::Status;

#[test]
fn the_cap_is_the_functions_own_limit() {
    assert!(MIGRATION.contains(&format!("limit {CAP}\n")), "migrations/0002 limits to {CAP}");
}

fn settings_of(pairs: &[(&str, &str)]) -> Result<RunsSettings, ConfigError> {
    RunsSettings::from_source(&crate::env::pairs(pairs))
}

#[test]
fn defaults_and_refused_values_name_their_variable() {
    let s = settings_of(&[]).unwrap();
    assert_eq!(
        (s.tables.runs.as_str(), s.tables.events.as_str()),
        ("workflow_runs", "workflow_events")
    );
    assert_eq!(
        (s.stalled_after_secs, s.lookback_secs, s.unhealthy_min_stalled),
        (300, 86_400, 3)
    );
    for (key, value) in [
        ("RUNS_TABLE", "Workflow_Runs"),
        ("RUNS_TABLE", "runs; drop table x"),
        ("RUNS_EVENTS_TABLE", "a.b.c"),
        ("RUNS_STALLED_AFTER_SECS", "0"),
        ("RUNS_STALLED_AFTER_SECS", "5m"),
        ("RUNS_LOOKBACK_SECS", "-1"),
        ("RUNS_UNHEALTHY_MIN_STALLED", "0"),
    ] {
        assert_eq!(settings_of(&[(key, value)]).unwrap_err().variable, key, "{value}");
    }
    let short = settings_of(&[("RUNS_STALLED_AFTER_SECS", "600"), ("RUNS_LOOKBACK_SECS", "300")]);
    assert_eq!(short.unwrap_err().variable, "RUNS_LOOKBACK_SECS");
}

#[test]
fn migrate_puts_the_configured_tables_in_the_shipped_migration() {
    let tables = settings_of(&[]).unwrap().tables;
    assert_eq!(tables.migration("public"), MIGRATION);
    let custom = RunsTables {
        runs: "app.runs".into(),
        events: "events".into(),
    };
    let sql = custom.migration("tenant");
    assert!(sql.contains("from app.runs r") && sql.contains("from tenant.events e"), "{sql}");
    assert!(!sql.contains("workflow_"), "every default name replaced: {sql}");
    assert!(RunsTables::same("workflow_runs", "public.workflow_runs"));
    assert!(RunsTables::same("app.runs", "app.runs"));
    assert!(!RunsTables::same("app.runs", "public.runs"));
    assert!(!RunsTables::same("runs", "public.workflow_runs"));
}

#[test]
fn every_rule_in_order() {
    let s = settings_of(&[]).unwrap();
    let of = |in_flight, stalled, hidden| {
        let outcome = judge_progress(
            &Progress {
                in_flight,
                stalled,
                oldest_stalled_secs: if stalled > 0 { 400 } else { 0 },
                last_progress_secs: (in_flight > 0).then_some(2),
                rows_hidden: hidden,
            },
            &s,
        );
        (outcome.verdict.status, outcome.verdict.reason)
    };
    use Status::{Degraded, Healthy, Unhealthy};
    assert_eq!(of(0, 0, false), (Healthy, None));
    assert_eq!(of(12, 0, false), (Healthy, None));
    assert_eq!(of(12, 1, false), (Degraded, Some(Reason::RunsStalled)));
    assert_eq!(of(2, 2, false), (Degraded, Some(Reason::RunsStalled)), "below the minimum");
    assert_eq!(of(4, 3, false), (Degraded, Some(Reason::RunsStalled)), "one still moves");
    assert_eq!(of(3, 3, false), (Unhealthy, Some(Reason::EngineStalled)));
    assert_eq!(of(0, 0, true), (Unhealthy, Some(Reason::RowsHidden)));
    let hidden = judge_progress(
        &Progress {
            rows_hidden: true,
            ..Progress::default()
        },
        &s,
    );
    assert!(hidden.facts.is_empty() && hidden.metrics.is_empty());
    let none = judge_progress(&Progress::default(), &s);
    assert_eq!(none.facts[3], ("last_progress_secs", Value::Null));
    assert_eq!(none.metrics[0].values.len(), 3);
}
