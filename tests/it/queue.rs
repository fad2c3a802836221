//! The `queue` component against real pgmq: pgmq's own install script in a
//! throwaway cluster, queues driven with pgmq's own functions (`create`,
//! `send` with and without delay, `read`, `archive`, and a move to the
//! dead-letter queue as MeshHook does it), messages aged by moving
//! `vt`/`enqueued_at` back.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::pgbouncer::PgBouncer;
use crate::support::runtime_api::RuntimeApi;
use crate::support::wait::eventually;
use crate::support::{verbose, Stack};
use http::StatusCode;
use serde_json::{json, Value};

/// A healthy stack with pgmq installed and queue `workflow_jobs` (and,
/// unless `dlq` is false, `workflow_jobs_dlq`) created, the queue component
/// enabled next to database and workers.
async fn queue_stack(dlq: bool) -> Stack {
    let mut stack = Stack::new().await;
    install(&stack).await;
    stack.sql("SELECT pgmq.create('workflow_jobs')").await;
    if dlq {
        stack.sql("SELECT pgmq.create('workflow_jobs_dlq')").await;
    }
    stack.set("HEALTH_COMPONENTS", "database,workers,queue");
    stack
}

async fn install(stack: &Stack) {
    stack.sql(crate::support::pgmq::install_sql()).await;
}

/// `pgmq.send` without delay; returns the message id.
async fn send(stack: &Stack, queue: &str) -> String {
    stack
        .pg()
        .value(
            &stack.db,
            &format!("SELECT * FROM pgmq.send('{queue}', '{{\"run_id\":\"r\"}}'::jsonb)"),
        )
        .await
        .unwrap()
}

/// Moves every message of `queue` `secs` into the past, as if it had been
/// sent (and become visible) that long ago.
async fn age(stack: &Stack, queue: &str, secs: u64) {
    stack
        .sql(&format!(
            "UPDATE pgmq.q_{queue} SET enqueued_at = enqueued_at - interval '{secs} seconds', \
             vt = vt - interval '{secs} seconds'"
        ))
        .await;
}

async fn queue_entry(stack: &Stack) -> (Value, Value) {
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    assert_eq!(
        body["details"]["database"], "healthy",
        "the database stays healthy: {body}"
    );
    (body["checks"]["queue"].clone(), body)
}

fn counts(queue: &Value, name: &str) -> (u64, u64, u64) {
    let q = &queue["queues"][name];
    (
        q["ready"].as_u64().unwrap(),
        q["oldest_ready_secs"].as_u64().unwrap(),
        q["dead_letters_recent"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn empty_queue_is_healthy_with_zero_counts() {
    let stack = queue_stack(true).await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["details"]["queue"], "healthy");
    assert_eq!(counts(&body["checks"]["queue"], "workflow_jobs"), (0, 0, 0));
    assert!(body["checks"]["queue"].get("reason").is_none());
}

#[tokio::test]
async fn queue_is_not_in_the_default_body() {
    let mut stack = queue_stack(true).await;
    stack.unset("HEALTH_COMPONENTS");
    let body = verbose(&stack.app()).await.json();
    let names: Vec<&String> = body["details"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["database", "supabase", "workers"]);
}

#[tokio::test]
async fn a_fresh_job_is_ready_and_healthy() {
    let stack = queue_stack(true).await;
    send(&stack, "workflow_jobs").await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["status"], "healthy");
    let (ready, oldest, dead) = counts(&queue, "workflow_jobs");
    assert_eq!((ready, dead), (1, 0));
    assert!(oldest < 5, "{queue}");
}

#[tokio::test]
async fn a_job_ready_for_90_seconds_degrades_with_200() {
    let stack = queue_stack(true).await;
    send(&stack, "workflow_jobs").await;
    send(&stack, "workflow_jobs").await;
    age(&stack, "workflow_jobs", 90).await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["queue"]["reason"], "queue_backlog");
    let (ready, oldest, _) = counts(&body["checks"]["queue"], "workflow_jobs");
    assert_eq!(ready, 2);
    assert!((90..95).contains(&oldest), "{oldest}");
}

#[tokio::test]
async fn a_job_ready_for_400_seconds_is_unhealthy_with_500() {
    let stack = queue_stack(true).await;
    send(&stack, "workflow_jobs").await;
    age(&stack, "workflow_jobs", 400).await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["details"]["queue"], "unhealthy");
    assert_eq!(body["checks"]["queue"]["reason"], "queue_stalled");
    // The public body says no more than the status.
    let public = crate::support::get(&stack.app(), "/health").await.json();
    assert_eq!(
        public["details"],
        json!({"database":"healthy","workers":"healthy","queue":"unhealthy"})
    );
}

#[tokio::test]
async fn delayed_and_held_jobs_are_not_ready() {
    let stack = queue_stack(true).await;
    // Delayed by 600 s at send time.
    stack
        .sql("SELECT pgmq.send('workflow_jobs', '{\"run_id\":\"later\"}'::jsonb, 600)")
        .await;
    // Sent long ago, now held by a worker for 600 s.
    send(&stack, "workflow_jobs").await;
    stack
        .sql("UPDATE pgmq.q_workflow_jobs SET enqueued_at = now() - interval '1000 seconds' WHERE message->>'run_id' = 'r'")
        .await;
    let held = stack
        .pg()
        .value(
            &stack.db,
            "SELECT count(*) FROM pgmq.read('workflow_jobs', 600, 10)",
        )
        .await
        .unwrap();
    assert_eq!(held, "1", "the worker took the one visible job");
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["status"], "healthy", "{queue}");
    assert_eq!(counts(&queue, "workflow_jobs"), (0, 0, 0));
}

#[tokio::test]
async fn a_held_job_whose_visibility_ran_out_is_ready_again() {
    let stack = queue_stack(true).await;
    send(&stack, "workflow_jobs").await;
    // A worker takes the job for 1 s and dies: the job comes back by itself.
    stack
        .sql("SELECT * FROM pgmq.read('workflow_jobs', 1, 1)")
        .await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(counts(&queue, "workflow_jobs").0, 0, "held: {queue}");
    eventually(
        "the job back in the queue",
        Duration::from_secs(10),
        async || {
            let (queue, _) = queue_entry(&stack).await;
            if counts(&queue, "workflow_jobs").0 == 1 {
                Ok(())
            } else {
                Err(queue)
            }
        },
    )
    .await;
    // It has been ready since its visibility ran out, not since it was sent:
    // two minutes after the timeout it is a backlog.
    stack
        .sql("UPDATE pgmq.q_workflow_jobs SET vt = now() - interval '120 seconds'")
        .await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["reason"], "queue_backlog", "{queue}");
    let (ready, oldest, _) = counts(&queue, "workflow_jobs");
    assert_eq!(ready, 1);
    assert!((120..125).contains(&oldest), "{oldest}");
}

/// MeshHook's move to the dead-letter queue: send the message there, then
/// archive it from the work queue.
async fn dead_letter(stack: &Stack) {
    let id = send(stack, "workflow_jobs").await;
    stack
        .sql(&format!(
            "SELECT pgmq.send('workflow_jobs_dlq', message || '{{\"error_message\":\"boom\"}}'::jsonb) \
             FROM pgmq.q_workflow_jobs WHERE msg_id = {id}; \
             SELECT pgmq.archive('workflow_jobs', {id}::bigint)"
        ))
        .await;
}

#[tokio::test]
async fn a_recent_dead_letter_degrades_and_an_old_one_does_not() {
    let stack = queue_stack(true).await;
    dead_letter(&stack).await;
    let (queue, body) = queue_entry(&stack).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(queue["reason"], "dead_letters");
    assert_eq!(counts(&queue, "workflow_jobs"), (0, 0, 1));

    age(&stack, "workflow_jobs_dlq", 901).await;
    let (queue, body) = queue_entry(&stack).await;
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(counts(&queue, "workflow_jobs"), (0, 0, 0));
}

#[tokio::test]
async fn a_missing_dead_letter_queue_is_fine() {
    let stack = queue_stack(false).await;
    send(&stack, "workflow_jobs").await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["status"], "healthy");
    assert_eq!(counts(&queue, "workflow_jobs").2, 0);
}

#[tokio::test]
async fn with_several_queues_the_worst_wins() {
    let mut stack = queue_stack(true).await;
    stack.sql("SELECT pgmq.create('webhook_deliveries')").await;
    stack.set("QUEUE_NAMES", "workflow_jobs,webhook_deliveries");
    send(&stack, "workflow_jobs").await;
    age(&stack, "workflow_jobs", 90).await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["reason"], "queue_backlog");

    send(&stack, "webhook_deliveries").await;
    age(&stack, "webhook_deliveries", 400).await;
    let (queue, body) = queue_entry(&stack).await;
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(queue["reason"], "queue_stalled");
    assert_eq!(counts(&queue, "workflow_jobs").0, 1);
    assert_eq!(counts(&queue, "webhook_deliveries").0, 1);
}

#[tokio::test]
async fn a_missing_queue_is_schema_missing_and_the_database_stays_healthy() {
    let mut stack = queue_stack(true).await;
    stack.set("QUEUE_NAMES", "workflow_jobs,not_created");
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.json();
    assert_eq!(body["details"]["database"], "healthy");
    assert_eq!(body["checks"]["queue"]["reason"], "schema_missing");
    // The queue that exists is still measured.
    assert_eq!(counts(&body["checks"]["queue"], "workflow_jobs"), (0, 0, 0));
}

#[tokio::test]
async fn a_database_without_pgmq_is_schema_missing_and_the_database_stays_healthy() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_COMPONENTS", "database,queue");
    let (queue, body) = queue_entry(&stack).await;
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(queue["reason"], "schema_missing");
}

#[tokio::test]
async fn thresholds_come_from_the_environment() {
    let mut stack = queue_stack(true).await;
    stack
        .set("QUEUE_DEGRADED_AFTER_SECS", "10")
        .set("QUEUE_UNHEALTHY_AFTER_SECS", "20")
        .set("QUEUE_DEAD_LETTER_WINDOW_SECS", "5000");
    send(&stack, "workflow_jobs").await;
    age(&stack, "workflow_jobs", 15).await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["reason"], "queue_backlog");
    age(&stack, "workflow_jobs", 10).await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["reason"], "queue_stalled");

    stack.sql("SELECT pgmq.purge_queue('workflow_jobs')").await;
    dead_letter(&stack).await;
    age(&stack, "workflow_jobs_dlq", 4000).await;
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["reason"], "dead_letters", "inside a 5000 s window");
}

#[tokio::test]
async fn bad_names_and_thresholds_exit_2_naming_the_variable() {
    let mut stack = queue_stack(true).await;
    stack.set("HEALTH_COMPONENTS", "database,queue");
    for (key, value) in [
        ("QUEUE_NAMES", "workflow_jobs;drop schema pgmq cascade"),
        ("QUEUE_NAMES", "Workflow-Jobs"),
        ("QUEUE_DLQ_SUFFIX", "'dlq"),
        ("QUEUE_DEGRADED_AFTER_SECS", "soon"),
        ("QUEUE_UNHEALTHY_AFTER_SECS", "10"),
        ("QUEUE_DEAD_LETTER_WINDOW_SECS", "0"),
    ] {
        let mut env = stack.env.clone();
        env.insert(key.into(), value.into());
        let out = Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
            .arg("check")
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(stderr.contains(key), "{key}={value}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    // The schema is untouched.
    assert_eq!(
        stack
            .pg()
            .value(&stack.db, "SELECT count(*) FROM pgmq.meta")
            .await
            .as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn measured_through_a_transaction_pooler() {
    let mut stack = queue_stack(true).await;
    let bouncer = PgBouncer::start(stack.pg(), 4);
    let url = bouncer.url(&stack.db);
    stack.set("DATABASE_URL", &url);
    send(&stack, "workflow_jobs").await;
    age(&stack, "workflow_jobs", 90).await;
    let app = stack.app();
    for _ in 0..30 {
        let body = verbose(&app).await.json();
        assert_eq!(body["details"]["database"], "healthy", "{body}");
        assert_eq!(body["details"]["workers"], "healthy", "{body}");
        assert_eq!(body["checks"]["queue"]["reason"], "queue_backlog", "{body}");
    }
}

#[tokio::test]
async fn lambda_mode_prints_queue_metrics_per_queue() {
    let mut stack = queue_stack(true).await;
    stack.sql("SELECT pgmq.create('webhook_deliveries')").await;
    stack.set("QUEUE_NAMES", "workflow_jobs,webhook_deliveries");
    send(&stack, "workflow_jobs").await;
    send(&stack, "workflow_jobs").await;
    age(&stack, "workflow_jobs", 75).await;
    let api = RuntimeApi::start(vec![crate::support::runtime_api::event("scheduled.json")]).await;
    let child = api.spawn_function(&stack.env);
    let results = api.results(1, Duration::from_secs(20)).await;
    assert_eq!(results[0].0, "response", "{results:?}");
    let stdout = child.kill_and_read_stdout();

    let documents: Vec<Value> = stdout.lines().map(crate::support::emf::check).collect();
    let per_queue: Vec<&Value> = documents
        .iter()
        .filter(|d| d.get("Queue").is_some())
        .collect();
    assert_eq!(per_queue.len(), 2, "{stdout}");
    let jobs = per_queue
        .iter()
        .find(|d| d["Queue"] == "workflow_jobs")
        .unwrap();
    assert_eq!(jobs["QueueReady"], 2.0);
    assert!((75.0..80.0).contains(&jobs["QueueOldestReadySeconds"].as_f64().unwrap()));
    assert_eq!(jobs["DeadLettersRecent"], 0.0);
    let directive = &jobs["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Dimensions"], json!([["Queue"]]));
    let units: Vec<(&str, &str)> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
        .collect();
    assert_eq!(
        units,
        [
            ("QueueReady", "Count"),
            ("QueueOldestReadySeconds", "Seconds"),
            ("DeadLettersRecent", "Count")
        ]
    );
    // `Healthy` is still counted once per evaluation.
    assert_eq!(
        documents
            .iter()
            .filter(|d| d.get("Healthy").is_some())
            .count(),
        1
    );
}

/// The documented grants (docs/OPERATIONS.md, section 2: the base role and
/// the queue block) with `role` for the health role, run as written.
async fn documented_grants(stack: &Stack, role: &str) {
    let grants = [
        crate::support::docs::operations_sql("<!-- role: base -->"),
        crate::support::docs::operations_sql("<!-- role: queue -->"),
    ]
    .concat()
    .replace("meshhook_health", role)
    .replace("<long random password>", "not-used-with-trust")
    .replace("database postgres", &format!("database {}", stack.db));
    stack.sql(&grants).await;
}

#[tokio::test]
async fn a_role_with_only_the_documented_grants_can_measure_the_queues() {
    let mut stack = queue_stack(true).await;
    let role = format!("health_{}", stack.db);
    documented_grants(&stack, &role).await;
    let url = crate::support::as_role(&stack.env["DATABASE_URL"], &role);
    stack.set("DATABASE_URL", &url);
    dead_letter(&stack).await;
    let (queue, body) = queue_entry(&stack).await;
    assert_eq!(body["details"]["workers"], "healthy", "{body}");
    assert_eq!(queue["reason"], "dead_letters", "{queue}");

    // A watched queue without the grant is a query failure, not a missing queue.
    stack.sql("SELECT pgmq.create('ungranted')").await;
    stack.set("QUEUE_NAMES", "workflow_jobs,ungranted");
    let (queue, _) = queue_entry(&stack).await;
    assert_eq!(queue["reason"], "query_failed", "{queue}");
}

/// The documented grants run without error where the dead-letter queue
/// does not exist (yet), and the queue is measured.
#[tokio::test]
async fn the_documented_grants_do_not_fail_without_a_dead_letter_queue() {
    let mut stack = queue_stack(false).await;
    let role = format!("health_{}", stack.db);
    documented_grants(&stack, &role).await;
    let url = crate::support::as_role(&stack.env["DATABASE_URL"], &role);
    stack.set("DATABASE_URL", &url);
    send(&stack, "workflow_jobs").await;
    let (queue, body) = queue_entry(&stack).await;
    assert_eq!(body["details"]["queue"], "healthy", "{body}");
    assert_eq!(queue["queues"]["workflow_jobs"]["ready"], 1, "{queue}");
}
