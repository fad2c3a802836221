//! The `runs` component against a database of MeshHook's shape
//! (`crate::support::meshhook`): runs and their event log, row-level security on
//! both, the function made by the real `meshhook-health migrate`. Ages are
//! set relative to the database's `now()`, so every case holds on any day.

use crate::support::meshhook::{self, migrated, run};
use crate::support::pgbouncer::PgBouncer;
use crate::support::{as_role, verbose, Stack};
use http::StatusCode;
use serde_json::{json, Value};

/// `stack` watching runs, on a MeshHook-shaped database with event
/// partitions from `months_back` months ago to next month (no tables when
/// `None`); not migrated.
async fn watching_runs(mut stack: Stack, months_back: Option<u32>) -> Stack {
    stack.set("HEALTH_COMPONENTS", "database,runs");
    if let Some(months_back) = months_back {
        stack.sql(&meshhook::schema(months_back)).await;
    }
    stack
}

/// A stack watching runs, with 12 monthly event partitions, migrated by
/// the tables' owner.
async fn runs_stack() -> Stack {
    let stack = watching_runs(Stack::new().await, Some(10)).await;
    migrated(&stack.env);
    stack
}

async fn runs_entry(stack: &Stack) -> (StatusCode, Value) {
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    assert!(body["checks"]["runs"].is_object(), "{}", answer.text);
    (answer.status, body["checks"]["runs"].clone())
}

fn number(entry: &Value, key: &str) -> u64 {
    entry[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key}: {entry}"))
}

#[tokio::test]
async fn progressing_runs_are_healthy_and_finished_paused_or_old_runs_are_not_looked_at() {
    let stack = runs_stack().await;
    let mut sql = String::new();
    for _ in 0..3 {
        sql += &run("running", 600, &[590, 300, 5]);
    }
    for status in ["succeeded", "failed", "paused", "canceled"] {
        sql += &run(status, 3_600, &[]);
    }
    // Started before the lookback (a day): abandoned long ago, not looked at.
    sql += &run("running", 2 * 86_400, &[2 * 86_400 - 10]);
    stack.sql(&sql).await;

    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["status"], "healthy", "{entry}");
    assert_eq!(
        (number(&entry, "in_flight"), number(&entry, "stalled")),
        (3, 0)
    );
    assert_eq!(number(&entry, "oldest_stalled_secs"), 0);
    assert!(number(&entry, "last_progress_secs") <= 5 + 60, "{entry}");
    assert!(entry.get("reason").is_none());
}

#[tokio::test]
async fn nothing_in_flight_is_healthy_with_no_last_progress() {
    let stack = runs_stack().await;
    stack.sql(&run("succeeded", 60, &[50])).await;
    let (_, entry) = runs_entry(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
    assert_eq!(number(&entry, "in_flight"), 0);
    assert_eq!(entry["last_progress_secs"], Value::Null);
}

#[tokio::test]
async fn a_run_without_progress_for_the_threshold_is_stalled_and_degrades_with_its_metrics() {
    let stack = runs_stack().await;
    let sql = [
        run("running", 600, &[10]),
        run("running", 600, &[400, 20]),
        // Last event 900 s ago.
        run("running", 1_000, &[990, 900]),
        // No event at all: its start is its last progress.
        run("running", 400, &[]),
    ]
    .concat();
    stack.sql(&sql).await;

    let mut stack = stack;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK, "degraded answers 200");
    let body = answer.json();
    let entry = &body["checks"]["runs"];
    assert_eq!(
        (&entry["status"], &entry["reason"]),
        (&json!("degraded"), &json!("runs_stalled")),
        "{entry}"
    );
    assert_eq!(
        (number(entry, "in_flight"), number(entry, "stalled")),
        (4, 2)
    );
    let oldest = number(entry, "oldest_stalled_secs");
    assert!((900..900 + 60).contains(&oldest), "{oldest}");
    assert!(number(entry, "last_progress_secs") < 60, "{entry}");

    // EMF: one document with dimension Component=runs.
    let app = stack.app();
    let report = app.evaluator.evaluate().await;
    let doc = meshhook_health::emf::lines(&report, "NS")
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|d| d.get("RunsInFlight").is_some())
        .expect("a runs metrics document");
    assert_eq!(doc["Component"], "runs");
    assert_eq!(
        (&doc["RunsInFlight"], &doc["RunsStalled"]),
        (&json!(4.0), &json!(2.0))
    );
    assert!(doc["RunsOldestStalledSeconds"].as_f64().unwrap() >= 900.0);

    // The threshold is the operator's: at 20 minutes nothing is stalled.
    stack.set("RUNS_STALLED_AFTER_SECS", "1200");
    let (_, entry) = runs_entry(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
}

#[tokio::test]
async fn when_every_in_flight_run_is_stalled_the_engine_is_unhealthy() {
    let mut stack = runs_stack().await;
    let sql = [
        run("running", 3_000, &[2_000]),
        run("running", 1_000, &[]),
        run("running", 700, &[650, 600]),
        // Finished runs move nothing and do not count.
        run("succeeded", 60, &[30]),
    ]
    .concat();
    stack.sql(&sql).await;
    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{entry}");
    assert_eq!(entry["reason"], "engine_stalled");
    assert_eq!(
        (number(&entry, "in_flight"), number(&entry, "stalled")),
        (3, 3)
    );

    // Fewer stalled than RUNS_UNHEALTHY_MIN_STALLED: only degraded.
    stack.set("RUNS_UNHEALTHY_MIN_STALLED", "4");
    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["reason"], "runs_stalled", "{entry}");

    // One run that moves means the engine works: degraded, not unhealthy.
    stack.set("RUNS_UNHEALTHY_MIN_STALLED", "3");
    stack.sql(&run("running", 100, &[2])).await;
    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["reason"], "runs_stalled", "{entry}");
}

#[tokio::test]
async fn a_least_privilege_role_set_up_as_documented_sees_every_run_through_row_level_security() {
    let mut stack = runs_stack().await;
    let owner_url = stack.env["DATABASE_URL"].clone();
    let role = format!("health_{}", stack.db);
    let grants = [
        crate::support::docs::operations_sql("<!-- role: base -->"),
        crate::support::docs::operations_sql("<!-- role: runs -->"),
    ]
    .concat()
    .replace("meshhook_health", &role)
    .replace("<long random password>", "not-used-with-trust")
    .replace("database postgres", &format!("database {}", stack.db));
    stack.sql(&grants).await;
    stack.sql(&run("running", 900, &[800])).await;
    stack.sql(&run("running", 60, &[1])).await;

    // The role itself reads no run: no grant, and RLS would hide them anyway.
    let pg = stack.pg();
    let privilege = format!("SELECT has_table_privilege('{role}', 'workflow_runs', 'select')");
    assert_eq!(pg.value(&stack.db, &privilege).await.as_deref(), Some("f"));

    stack.set("DATABASE_URL", &as_role(&owner_url, &role));
    let (_, entry) = runs_entry(&stack).await;
    assert_eq!(entry["reason"], "runs_stalled", "{entry}");
    assert_eq!(
        (number(&entry, "in_flight"), number(&entry, "stalled")),
        (2, 1)
    );

    // A role without the EXECUTE grant cannot call the function at all:
    // migrate revoked it from PUBLIC.
    let stranger = format!("stranger_{}", stack.db);
    stack
        .sql(&format!(
            "CREATE ROLE {stranger} LOGIN; GRANT USAGE ON SCHEMA monitoring TO {stranger}; \
             GRANT SELECT ON monitoring.worker_heartbeats TO {stranger};"
        ))
        .await;
    let url = as_role(&owner_url, &stranger);
    stack.set("DATABASE_URL", &url);
    let (_, entry) = runs_entry(&stack).await;
    assert_eq!(entry["reason"], "query_failed", "{entry}");
}

#[tokio::test]
async fn a_function_owner_that_row_level_security_filters_reads_rows_hidden_never_healthy() {
    let stack = watching_runs(Stack::new().await, Some(2)).await;
    // Every run stalled: a view that hides them would read "healthy".
    stack
        .sql(
            &[
                run("running", 900, &[]),
                run("running", 900, &[]),
                run("running", 900, &[]),
            ]
            .concat(),
        )
        .await;
    // Migrated by a role that may read the tables but does not own them, so
    // their policies (rows of projects owned by auth.uid()) filter it.
    let filtered = format!("filtered_{}", stack.db);
    stack
        .sql(&format!(
            "CREATE ROLE {filtered} LOGIN; \
             GRANT CREATE ON DATABASE {db} TO {filtered}; \
             GRANT USAGE, CREATE ON SCHEMA monitoring TO {filtered}; \
             GRANT SELECT ON workflow_runs, workflow_events, projects TO {filtered}; \
             GRANT USAGE ON SCHEMA auth TO {filtered};",
            db = stack.db
        ))
        .await;
    let mut as_filtered = stack.env.clone();
    as_filtered.insert(
        "DATABASE_URL".into(),
        as_role(&stack.env["DATABASE_URL"], &filtered),
    );
    migrated(&as_filtered);

    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{entry}");
    assert_eq!(entry["reason"], "rows_hidden", "{entry}");
    assert!(
        entry.get("in_flight").is_none(),
        "no count from a filtered view: {entry}"
    );
}

#[tokio::test]
async fn missing_tables_or_a_missing_function_are_schema_missing() {
    // Migrated, but MeshHook's tables are not there.
    let stack = watching_runs(Stack::new().await, None).await;
    migrated(&stack.env);
    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(entry["reason"], "schema_missing", "{entry}");

    // The tables, but `migrate` never ran (no function).
    let stack = watching_runs(Stack::new().await, Some(1)).await;
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    assert_eq!(
        body["checks"]["runs"]["reason"], "schema_missing",
        "{}",
        answer.text
    );
    assert_eq!(body["details"]["database"], "healthy");
}

#[tokio::test]
async fn a_function_made_for_other_tables_is_not_configured() {
    let mut stack = runs_stack().await;
    stack
        .sql("CREATE TABLE other_runs (LIKE workflow_runs)")
        .await;
    stack.set("RUNS_TABLE", "public.other_runs");
    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(entry["reason"], "not_configured", "{entry}");

    // Re-running migrate with the new setting fixes it.
    migrated(&stack.env);
    let (_, entry) = runs_entry(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
}

#[tokio::test]
async fn the_check_passes_through_a_transaction_pooler() {
    let mut stack = watching_runs(Stack::dedicated().await, Some(1)).await;
    migrated(&stack.env);
    stack.sql(&run("running", 900, &[800])).await;
    stack.sql(&run("running", 60, &[3])).await;
    let bouncer = PgBouncer::start(stack.pg(), 2);
    stack.set("DATABASE_URL", &bouncer.url("postgres"));
    let app = stack.app();
    for _ in 0..10 {
        let answer = verbose(&app).await;
        let entry = &answer.json()["checks"]["runs"];
        assert_eq!(entry["reason"], "runs_stalled", "{}", answer.text);
        assert_eq!(entry["stalled"], 1);
    }
}

#[tokio::test]
async fn event_partitions_older_than_the_lookback_are_pruned() {
    let stack = runs_stack().await;
    stack.sql(&run("running", 60, &[30])).await;
    // The function's own statement, with its parameters filled in.
    let migration = include_str!("../../migrations/0002_runs_progress.sql");
    let start = migration.find("return query").unwrap() + "return query".len();
    let end = start + migration[start..].find(";\nend").unwrap();
    let statement = migration[start..end]
        .replace("lookback_secs", "86400")
        .replace("stalled_after_secs", "300");
    let (client, connection) =
        tokio_postgres::connect(&stack.env["DATABASE_URL"], tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let plan: Vec<String> = client
        .simple_query(&format!(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {statement}"
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    let plan = plan.join("\n");
    let removed: u32 = plan
        .lines()
        .find_map(|l| l.trim().strip_prefix("Subplans Removed: "))
        .unwrap_or_else(|| panic!("no pruning:\n{plan}"))
        .parse()
        .unwrap();
    // 12 monthly partitions; a day's lookback touches at most two.
    assert!(removed >= 10, "{removed} pruned:\n{plan}");
}

#[tokio::test]
async fn counting_stops_at_ten_thousand_in_flight() {
    let stack = runs_stack().await;
    stack
        .sql(&format!(
            "INSERT INTO workflow_runs (project_id, status, started_at) \
             SELECT '{}', 'running', now() - interval '10 minutes' FROM generate_series(1, 10050)",
            meshhook::PROJECT
        ))
        .await;
    let (status, entry) = runs_entry(&stack).await;
    assert_eq!(
        (number(&entry, "in_flight"), number(&entry, "stalled")),
        (10_000, 10_000),
        "{entry}"
    );
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(entry["reason"], "engine_stalled");
}
