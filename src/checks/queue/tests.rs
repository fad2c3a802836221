//! The queue's settings and judgement, without a database.

use super::*;
use crate::outcome::Status;

fn settings_of(pairs: &[(&str, &str)]) -> Result<QueueSettings, ConfigError> {
    QueueSettings::from_source(&crate::env::pairs(pairs))
}

fn state(name: &str, ready: u64, oldest: u64, dead: u64) -> QueueState {
    QueueState {
        name: name.into(),
        measured: Some(Measured {
            ready,
            oldest_ready_secs: oldest,
            dead_letters_recent: dead,
        }),
    }
}

#[test]
fn defaults() {
    let s = settings_of(&[]).unwrap();
    assert_eq!(s.names, ["workflow_jobs"]);
    assert_eq!(s.dlq_suffix, "_dlq");
    assert_eq!(
        (
            s.degraded_after_secs,
            s.unhealthy_after_secs,
            s.dead_letter_window_secs
        ),
        (60, 300, 900)
    );
}

#[test]
fn bad_values_name_their_variable() {
    for (key, value) in [
        ("QUEUE_NAMES", "jobs;drop table x"),
        ("QUEUE_NAMES", "Jobs"),
        ("QUEUE_NAMES", "jobs,o'neil"),
        ("QUEUE_NAMES", " , "),
        ("QUEUE_NAMES", &"a".repeat(48)),
        ("QUEUE_DLQ_SUFFIX", "-dead"),
        ("QUEUE_DLQ_SUFFIX", "_dlq'"),
        ("QUEUE_DEGRADED_AFTER_SECS", "0"),
        ("QUEUE_DEGRADED_AFTER_SECS", "soon"),
        ("QUEUE_UNHEALTHY_AFTER_SECS", "30"),
        ("QUEUE_DEAD_LETTER_WINDOW_SECS", "-1"),
    ] {
        let error = settings_of(&[(key, value)]).expect_err(value);
        assert_eq!(error.variable, key, "{key}={value}");
    }
}

#[test]
fn statements_read_each_existing_table_once_and_quote_nothing_they_did_not_validate() {
    let s = settings_of(&[("QUEUE_NAMES", "jobs,mail")]).unwrap();
    let presence = format!("{:?}", statement::presence(&s.names, &s.dlq_suffix));
    assert!(
        presence.contains(r#"["pgmq.q_jobs", "pgmq.q_jobs_dlq", "pgmq.q_mail", "pgmq.q_mail_dlq"]"#),
        "the table names are the parameter: {presence}"
    );
    let queues = Queues {
        names: &s.names,
        dlq_suffix: &s.dlq_suffix,
        window_secs: s.dead_letter_window_secs,
    };
    let numbers = |tables| statement::numbers(&queues, &Tables(tables)).map(|n| n.sql().to_owned());
    let both = numbers(vec![(true, true), (true, false)]).unwrap();
    assert_eq!(both.matches("UNION ALL").count(), 1);
    assert_eq!(both.matches("pgmq.q_jobs_dlq").count(), 1);
    assert!(!both.contains("pgmq.q_mail_dlq"));
    assert!(both.contains("LIMIT $2"), "the cap is a parameter");
    let one = numbers(vec![(false, true), (true, false)]).unwrap();
    assert!(!one.contains("pgmq.q_jobs") && one.contains("pgmq.q_mail "));
    assert_eq!(numbers(vec![(false, false), (false, true)]), None);
}

#[test]
fn worst_queue_wins() {
    let s = settings_of(&[]).unwrap();
    let healthy = judge_waiting_jobs(&[state("a", 3, 2, 0)], &s);
    assert_eq!((healthy.verdict.status, healthy.verdict.reason), (Status::Healthy, None));
    let cases = [
        (state("a", 1, 60, 0), Status::Degraded, Reason::QueueBacklog),
        (
            state("a", 1, 300, 0),
            Status::Unhealthy,
            Reason::QueueStalled,
        ),
        (state("a", 0, 0, 1), Status::Degraded, Reason::DeadLetters),
        (
            QueueState {
                name: "a".into(),
                measured: None,
            },
            Status::Unhealthy,
            Reason::SchemaMissing,
        ),
    ];
    for (one, status, reason) in cases {
        let outcome = judge_waiting_jobs(&[state("b", 0, 0, 0), one.clone()], &s);
        assert_eq!(
            (outcome.verdict.status, outcome.verdict.reason),
            (status, Some(reason)),
            "{one:?}"
        );
    }
    let mixed = judge_waiting_jobs(&[state("a", 1, 90, 0), state("b", 1, 400, 0)], &s);
    assert_eq!(mixed.verdict.reason, Some(Reason::QueueStalled));
    assert_eq!(mixed.metrics.len(), 2);
    assert_eq!(
        mixed.facts[0].1["b"],
        json!({"ready": 1, "oldest_ready_secs": 400, "dead_letters_recent": 0})
    );
}
