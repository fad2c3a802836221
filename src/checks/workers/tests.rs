//! The heartbeats' thresholds and judgement, without a database.

use super::*;
use crate::outcome::Status;

fn kind(kind: &str, alive: u64, stale: u64) -> HeartbeatGroup {
    HeartbeatGroup {
        kind: kind.into(),
        version: None,
        alive,
        stale,
        newest_alive_start: (alive > 0).then_some(0.0),
    }
}

#[test]
fn classification_follows_the_documented_rules() {
    let t = WorkersSettings::default();
    assert_eq!(
        judge_heartbeats(&[kind("worker", 2, 0)], &t).status(),
        Status::Healthy
    );
    let stale = judge_heartbeats(&[kind("worker", 2, 1)], &t);
    assert_eq!(
        (stale.verdict.status, stale.verdict.reason),
        (Status::Degraded, Some(Reason::StaleWorkers))
    );
    let none = judge_heartbeats(&[], &t);
    assert_eq!(
        (none.verdict.status, none.verdict.reason),
        (Status::Unhealthy, Some(Reason::TooFewWorkers))
    );
    let zero_needed = WorkersSettings {
        min_alive: 0,
        ..WorkersSettings::default()
    };
    assert_eq!(judge_heartbeats(&[], &zero_needed).status(), Status::Healthy);
    let by_kind = WorkersSettings {
        min_alive_by_kind: vec![("orchestrator".into(), 1)],
        ..WorkersSettings::default()
    };
    let short = judge_heartbeats(
        &[kind("http-exec", 3, 0), kind("orchestrator", 0, 1)],
        &by_kind,
    );
    assert_eq!(
        (short.verdict.status, short.verdict.reason),
        (Status::Unhealthy, Some(Reason::TooFewWorkers))
    );
    assert_eq!(
        short.facts,
        [
            ("alive", json!(3)),
            ("stale", json!(1)),
            ("min_alive", json!(1)),
            ("versions", json!({"unknown": 3})),
        ]
    );
}

#[test]
fn the_version_is_the_newest_alive_workers_and_versions_count_alive_ones() {
    let group = |version: Option<&str>, alive, stale, started: Option<f64>| HeartbeatGroup {
        kind: "orchestrator".into(),
        version: version.map(str::to_owned),
        alive,
        stale,
        newest_alive_start: started,
    };
    let t = WorkersSettings::default();
    let rollout = judge_heartbeats(
        &[
            group(Some("1.4.1"), 2, 0, Some(100.0)),
            group(Some("1.4.2"), 1, 0, Some(200.0)),
            group(None, 1, 0, Some(300.0)),
            // Only stale workers report this one: not running.
            group(Some("1.5.0"), 0, 1, None),
        ],
        &t,
    );
    assert_eq!(rollout.meshhook_version.as_deref(), Some("1.4.2"));
    assert_eq!(
        rollout.facts[3],
        ("versions", json!({"1.4.1": 2, "1.4.2": 1, "unknown": 1}))
    );
    let silent = judge_heartbeats(&[group(None, 2, 0, Some(1.0))], &t);
    assert_eq!(silent.meshhook_version, None);
}

#[test]
fn figures_by_kind_name_only_listed_kinds() {
    let settings = WorkersSettings {
        min_alive_by_kind: vec![("orchestrator".into(), 1), ("http-exec".into(), 1)],
        ..WorkersSettings::default()
    };
    let groups = [
        kind("orchestrator", 2, 1),
        kind("x\" injected", 1, 0),
        kind("cron", 3, 2),
    ];
    let figures: Vec<(String, Vec<f64>)> = judge_heartbeats(&groups, &settings)
        .metrics
        .into_iter()
        .map(|set| {
            assert_eq!(set.dimension.0, "Kind");
            let names: Vec<_> = set.values.iter().map(|(f, _)| f.prometheus).collect();
            assert_eq!(names, [Some("workers_alive"), Some("workers_stale")]);
            (set.dimension.1, set.values.iter().map(|(_, v)| *v).collect())
        })
        .collect();
    let expected = [
        ("orchestrator", [2.0, 1.0]),
        ("http-exec", [0.0, 0.0]),
        (OTHER_KINDS, [4.0, 2.0]),
    ];
    assert_eq!(figures.len(), 3);
    for ((kind, values), (want, numbers)) in figures.iter().zip(expected) {
        assert_eq!((kind.as_str(), values.as_slice()), (want, numbers.as_slice()));
    }
    let only_other = judge_heartbeats(&groups, &WorkersSettings::default()).metrics;
    assert_eq!(only_other.len(), 1);
    assert_eq!(only_other[0].dimension.1, OTHER_KINDS);
}

#[test]
fn thresholds_parse_per_kind_minimums() {
    let env: std::collections::HashMap<String, String> = [(
        "WORKER_MIN_ALIVE_BY_KIND".to_owned(),
        "orchestrator=1, http-exec=2".to_owned(),
    )]
    .into();
    assert_eq!(
        WorkersSettings::from_source(&env).unwrap().min_alive_by_kind,
        [("orchestrator".to_owned(), 1), ("http-exec".to_owned(), 2)]
    );
}

#[test]
fn the_migrated_function_runs_the_checks_own_statement() {
    crate::db::planned::assert_migrated(
        include_str!("../../../migrations/0005_worker_readings.sql"),
        STATEMENT,
        FUNCTION,
    );
}

#[test]
fn epoch_seconds_read_a_timestamptz_as_extract_does() {
    for (micros, seconds) in [
        (0, 946_684_800.0),
        (-500_000, 946_684_799.5),
        (1_500_000, 946_684_801.5),
        // 1969-12-31 23:59:58.5 UTC: before the Unix epoch.
        (-946_684_801_500_000, -1.5),
        (i64::MAX, f64::INFINITY),
        (i64::MIN, f64::NEG_INFINITY),
    ] {
        assert_eq!(epoch_seconds(micros), seconds, "{micros}");
    }
    // Rounded once, from the exact decimal.
    assert_eq!(epoch_seconds(849_614_400_123_457), "1796299200.123457".parse::<f64>().unwrap());
}
