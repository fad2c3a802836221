//! The `partitions` component against real range-partitioned tables of
//! MeshHook's shape: an event log partitioned on `ts`, no default partition.
//! Partition bounds are set relative to the transaction's `now()`, so every
//! case holds on any day.

use crate::support::pgbouncer::PgBouncer;
use crate::support::{verbose, Answer, Stack};
use http::StatusCode;
use serde_json::{json, Value};

/// A stack watching the database and `tables` (default: workflow_events).
async fn stack_watching(tables: Option<&str>) -> Stack {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_COMPONENTS", "database,partitions");
    if let Some(tables) = tables {
        stack.set("PARTITIONS_TABLES", tables);
    }
    stack
}

/// An event log like MeshHook's, with one partition per `(from, to)` pair
/// of intervals around now, e.g. `("-1 day", "3 days")`. One statement, so
/// `now()` is the same for every bound.
fn event_log(table: &str, partitions: &[(&str, &str)]) -> String {
    let mut sql = format!(
        "CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY, run_id uuid NOT NULL, \
         ts timestamptz NOT NULL DEFAULT now(), kind text NOT NULL) PARTITION BY RANGE (ts);"
    );
    for (i, (from, to)) in partitions.iter().enumerate() {
        sql.push_str(&format!(
            "CREATE TABLE {table}_p{i} PARTITION OF {table} \
             FOR VALUES FROM (now() + interval '{from}') TO (now() + interval '{to}'); \
             CREATE INDEX ON {table}_p{i} (run_id, ts);"
        ));
    }
    sql
}

fn partitions_entry(answer: &Answer) -> Value {
    answer.json()["checks"]["partitions"].clone()
}

/// Asserts that the answer has `table` covered for every time to come (a
/// default partition, or a chain that ends in MAXVALUE).
fn assert_covers_every_time(answer: &Answer, table: &str) {
    assert_eq!(
        partitions_entry(answer)["tables"][table],
        json!({"covered_until": null, "covered_secs": null}),
        "{table}: {}",
        answer.text
    );
}

/// Seconds the table is covered for, as answered.
fn covered_secs(answer: &Answer, table: &str) -> i64 {
    partitions_entry(answer)["tables"][table]["covered_secs"]
        .as_i64()
        .unwrap_or_else(|| panic!("no covered_secs: {}", answer.text))
}

#[tokio::test]
async fn an_unbroken_chain_of_partitions_covers_until_its_end() {
    let stack = stack_watching(None).await;
    stack
        .sql(&event_log(
            "workflow_events",
            &[
                ("-40 days", "-10 days"),
                ("-10 days", "20 days"),
                ("20 days", "50 days"),
                // A gap: nothing from 50 to 60 days, so this one does not count.
                ("60 days", "90 days"),
            ],
        ))
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let entry = partitions_entry(&answer);
    assert_eq!(entry["status"], "healthy", "{}", answer.text);
    let secs = covered_secs(&answer, "workflow_events");
    assert!((50 * 86_400 - 120..=50 * 86_400).contains(&secs), "{secs}");
    let until = entry["tables"]["workflow_events"]["covered_until"]
        .as_str()
        .unwrap();
    assert!(until.ends_with('Z') && until.len() == 20, "{until}");
}

#[tokio::test]
async fn coverage_shorter_than_the_horizon_is_degraded_with_its_metric() {
    let stack = stack_watching(None).await;
    stack
        .sql(&event_log(
            "workflow_events",
            &[("-30 days", "1 day"), ("1 day", "3 days")],
        ))
        .await;
    let app = stack.app();
    let answer = verbose(&app).await;
    assert_eq!(answer.status, StatusCode::OK, "degraded answers 200");
    assert_eq!(answer.json()["status"], "degraded");
    let entry = partitions_entry(&answer);
    assert_eq!(
        (&entry["status"], &entry["reason"]),
        (&json!("degraded"), &json!("partition_ending"))
    );
    let secs = covered_secs(&answer, "workflow_events");
    assert!((3 * 86_400 - 120..=3 * 86_400).contains(&secs), "{secs}");

    // EMF: one document with dimension Table.
    let report = app.evaluator.evaluate().await;
    let lines = meshhook_health::emf::lines(&report, "NS");
    let table_doc = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|d| d.get("Table").is_some())
        .expect("a PartitionCoveredSeconds document");
    assert_eq!(table_doc["Table"], "workflow_events");
    assert!(table_doc["PartitionCoveredSeconds"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn no_partition_for_now_is_unhealthy_partition_missing() {
    let stack = stack_watching(None).await;
    stack
        .sql(&event_log(
            "workflow_events",
            &[("-90 days", "-60 days"), ("-60 days", "-1 hour")],
        ))
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let entry = partitions_entry(&answer);
    assert_eq!(entry["reason"], "partition_missing", "{}", answer.text);
    assert_eq!(
        entry["tables"]["workflow_events"],
        json!({"covered_until": null, "covered_secs": 0})
    );
    assert_eq!(answer.json()["details"]["database"], "healthy");
}

#[tokio::test]
async fn a_default_partition_covers_every_time() {
    let stack = stack_watching(None).await;
    stack
        .sql(&format!(
            "{} CREATE TABLE workflow_events_default PARTITION OF workflow_events DEFAULT;",
            event_log("workflow_events", &[("-1 day", "1 day")])
        ))
        .await;
    let answer = verbose(&stack.app()).await;
    let entry = partitions_entry(&answer);
    assert_eq!(entry["status"], "healthy", "{}", answer.text);
    assert_covers_every_time(&answer, "workflow_events");
}

/// MINVALUE and MAXVALUE bounds: a chain from now that ends in MAXVALUE
/// covers every time; one that starts at MINVALUE is measured to its end.
#[tokio::test]
async fn minvalue_and_maxvalue_bounds_are_read() {
    let stack = stack_watching(Some("open_events, first_events")).await;
    stack
        .sql(
            "CREATE TABLE open_events (ts timestamptz NOT NULL) PARTITION BY RANGE (ts); \
             CREATE TABLE open_events_old PARTITION OF open_events \
               FOR VALUES FROM (MINVALUE) TO (now() - interval '1 day'); \
             CREATE TABLE open_events_new PARTITION OF open_events \
               FOR VALUES FROM (now() - interval '1 day') TO (MAXVALUE); \
             CREATE TABLE first_events (ts timestamptz NOT NULL) PARTITION BY RANGE (ts); \
             CREATE TABLE first_events_all PARTITION OF first_events \
               FOR VALUES FROM (MINVALUE) TO (now() + interval '10 days');",
        )
        .await;
    let answer = verbose(&stack.app()).await;
    let entry = partitions_entry(&answer);
    assert_eq!(entry["status"], "healthy", "{}", answer.text);
    assert_covers_every_time(&answer, "open_events");
    let secs = covered_secs(&answer, "first_events");
    assert!((10 * 86_400 - 120..=10 * 86_400).contains(&secs), "{secs}");
}

/// After the first evaluation the catalog is read through
/// `monitoring.partitions_readings_v1()`, with the table names as its
/// argument: a doctored function (it claims a default partition for every
/// table it is given) shows which path answered.
#[tokio::test]
async fn the_catalog_is_read_through_the_migrated_function_after_the_first_evaluation() {
    let stack = stack_watching(None).await;
    stack
        .sql(&event_log("workflow_events", &[("-1 day", "1 day")]))
        .await;
    let app = stack.app();
    let answer = verbose(&app).await;
    assert_eq!(
        partitions_entry(&answer)["reason"],
        "partition_ending",
        "{}",
        answer.text
    );
    stack
        .sql(
            "CREATE OR REPLACE FUNCTION monitoring.partitions_readings_v1(tables text[]) \
             RETURNS TABLE (table_name text, table_kind text, now_epoch double precision, \
             range_starts double precision[], range_ends double precision[]) LANGUAGE sql \
             AS $$ SELECT t, 'default', extract(epoch FROM now())::float8, NULL::float8[], NULL::float8[] \
             FROM unnest(tables) AS t $$",
        )
        .await;
    let answer = verbose(&app).await;
    let entry = partitions_entry(&answer);
    assert_eq!(entry["status"], "healthy", "{}", answer.text);
    assert_covers_every_time(&answer, "workflow_events");
}

#[tokio::test]
async fn a_missing_or_unsuitable_table_is_schema_missing_and_the_worst_table_wins() {
    let stack = stack_watching(Some(
        "audit.events_by_day, missing_events, plain_events, listed_events, text_events, \
         numbered_events, paired_events, workflow_events",
    ))
    .await;
    stack
        .sql(&format!(
            "{} CREATE SCHEMA audit; \
             CREATE TABLE audit.events_by_day (day date NOT NULL) PARTITION BY RANGE (day); \
             CREATE TABLE audit.events_by_day_now PARTITION OF audit.events_by_day \
               FOR VALUES FROM (current_date - 1) TO (current_date + 400); \
             CREATE TABLE plain_events (ts timestamptz); \
             CREATE TABLE listed_events (kind text) PARTITION BY LIST (kind); \
             CREATE TABLE text_events (ts text) PARTITION BY RANGE (ts); \
             CREATE TABLE text_events_a PARTITION OF text_events FOR VALUES FROM ('a') TO ('m'); \
             CREATE TABLE numbered_events (n int) PARTITION BY RANGE (n); \
             CREATE TABLE numbered_events_a PARTITION OF numbered_events FOR VALUES FROM (1) TO (100); \
             CREATE TABLE paired_events (ts timestamptz, k text) PARTITION BY RANGE (ts, k); \
             CREATE TABLE paired_events_a PARTITION OF paired_events \
               FOR VALUES FROM (now(), 'a') TO (now() + interval '1 day', 'z');",
            event_log("workflow_events", &[("-1 day", "30 days")])
        ))
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let entry = partitions_entry(&answer);
    assert_eq!(entry["reason"], "schema_missing", "{}", answer.text);
    // The suitable tables are measured all the same; a date key too.
    let tables = entry["tables"].as_object().unwrap();
    let mut names: Vec<&str> = tables.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["audit.events_by_day", "workflow_events"]);
    assert!(covered_secs(&answer, "audit.events_by_day") > 300 * 86_400);
    assert_eq!(answer.json()["details"]["database"], "healthy");
}

#[tokio::test]
async fn a_timestamp_key_is_measured_like_a_timestamptz_one() {
    let stack = stack_watching(Some("local_events")).await;
    stack
        .sql(
            "CREATE TABLE local_events (ts timestamp NOT NULL) PARTITION BY RANGE (ts); \
             CREATE TABLE local_events_now PARTITION OF local_events \
               FOR VALUES FROM (localtimestamp - interval '1 day') TO (localtimestamp + interval '10 days');",
        )
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(
        partitions_entry(&answer)["status"],
        "healthy",
        "{}",
        answer.text
    );
    let secs = covered_secs(&answer, "local_events");
    assert!((10 * 86_400 - 120..=10 * 86_400).contains(&secs), "{secs}");
}

#[tokio::test]
async fn the_check_passes_through_a_transaction_pooler() {
    let mut stack = Stack::dedicated().await;
    stack.set("HEALTH_COMPONENTS", "database,partitions");
    stack
        .sql(&event_log("workflow_events", &[("-1 day", "30 days")]))
        .await;
    let bouncer = PgBouncer::start(stack.pg(), 2);
    stack.set("DATABASE_URL", &bouncer.url("postgres"));
    let app = stack.app();
    for _ in 0..10 {
        let answer = verbose(&app).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(partitions_entry(&answer)["status"], "healthy");
    }
}
