//! The database and workers checks through a real transaction-mode pooler
//! (PgBouncer with round-robin over several server connections), with a
//! control proving that named prepared statements break there.

use std::collections::HashSet;

use std::time::Duration;

use crate::support::latency::Latency;
use crate::support::pgbouncer::PgBouncer;
use crate::support::{verbose, Stack};
use http::StatusCode;
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[tokio::test]
async fn checks_pass_request_after_request_through_a_transaction_pooler() {
    let mut stack = Stack::dedicated().await;
    let bouncer = PgBouncer::start(stack.pg(), 4);

    // Make the pooler open its four server connections (min_pool_size fills
    // only on its maintenance timer).
    let warmers = (0..4).map(|_| async {
        let (client, connection) = tokio_postgres::connect(&bouncer.url("postgres"), NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        client.simple_query("SELECT pg_sleep(0.2)").await.unwrap();
        drop(client);
        let _ = task.await;
    });
    futures_util::future::join_all(warmers).await;

    // Control: the pooler really spreads transactions over backends, and a
    // named prepared statement (what a naive client would use) fails there.
    let (client, connection) = tokio_postgres::connect(&bouncer.url("postgres"), NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let mut backends = HashSet::new();
    for _ in 0..12 {
        for message in client
            .simple_query("SELECT pg_backend_pid()")
            .await
            .unwrap()
        {
            if let SimpleQueryMessage::Row(row) = message {
                backends.insert(row.get(0).unwrap().to_owned());
            }
        }
    }
    assert!(
        backends.len() > 1,
        "transactions did not move between backends: {backends:?}"
    );
    let statement = client.prepare("SELECT 1").await.unwrap();
    let mut failures = 0;
    for _ in 0..12 {
        if let Err(e) = client.query(&statement, &[]).await {
            assert!(
                e.to_string().contains("prepared statement") || e.as_db_error().is_some(),
                "{e}"
            );
            failures += 1;
        }
    }
    assert!(
        failures > 0,
        "named prepared statements worked: the control is vacuous"
    );
    drop(client);
    let _ = task.await;

    // The checks, through the same pooler, every time.
    let url = bouncer.url("postgres");
    stack
        .set("DATABASE_URL", &url)
        .set("HEALTH_COMPONENTS", "database,workers")
        .set("HEALTH_CACHE_TTL_MS", "0");
    let app = stack.app();
    for i in 0..60 {
        let answer = verbose(&app).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "request {i}: {}",
            answer.text
        );
        let body = answer.json();
        assert_eq!(body["details"]["database"], "healthy");
        assert_eq!(body["details"]["workers"], "healthy");
    }
    // And the heartbeat writer (unnamed statements with parameters).
    let mut env = stack.env.clone();
    env.insert("DATABASE_URL".into(), url);
    for i in 0..10 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
            .env_clear()
            .envs(&env)
            .args(["heartbeat", "--worker-id", &format!("pooled-{i}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// However many components read the database, an evaluation is one round
/// trip: their statements are pipelined on the evaluation's connection.
/// Counted as the client's flights (what it sends between two answers)
/// through PgBouncer in transaction mode, 20 ms away, so that a statement
/// sent after an answer came back could not hide in the same flight.
#[tokio::test]
async fn an_evaluation_is_one_round_trip_through_a_transaction_pooler() {
    let mut stack = Stack::dedicated().await;
    stack.sql(crate::support::pgmq::install_sql()).await;
    stack
        .sql(
            "SELECT pgmq.create('workflow_jobs'); SELECT pgmq.create('workflow_jobs_dlq'); \
             SELECT pgmq.send('workflow_jobs', '{}'::jsonb)",
        )
        .await;
    let bouncer = PgBouncer::start(stack.pg(), 2);
    let far = Latency::start(bouncer.port(), Duration::from_millis(20));
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
        far.port(),
        stack.db
    );
    stack
        .set("DATABASE_URL", &url)
        .set("HEALTH_COMPONENTS", "database,workers,queue,partitions")
        .set("HEALTH_CACHE_TTL_MS", "0")
        .set("HEALTH_TIMEOUT_MS", "5000");
    // Control: the counter tells sequential statements from pipelined ones.
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let task = tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    let before = far.flights();
    client.simple_query("SELECT 1").await.unwrap();
    client.simple_query("SELECT 2").await.unwrap();
    assert_eq!(
        far.flights() - before,
        2,
        "one after the other: two round trips"
    );
    let before = far.flights();
    let (a, b) = tokio::join!(
        client.simple_query("SELECT 1"),
        client.simple_query("SELECT 2")
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(far.flights() - before, 1, "pipelined: one");
    drop(client);
    let _ = task.await;

    let app = stack.app();
    // The connection, and which queue tables exist, once.
    for _ in 0..2 {
        verbose(&app).await;
    }
    let before = far.flights();
    for i in 0..10 {
        let body = verbose(&app).await.json();
        assert_eq!(body["details"]["database"], "healthy", "{i}: {body}");
        assert_eq!(body["details"]["workers"], "healthy", "{i}: {body}");
        assert_eq!(
            body["checks"]["queue"]["queues"]["workflow_jobs"]["ready"], 1,
            "{i}: {body}"
        );
        // The event log's table is missing here: its statement still ran.
        assert_eq!(
            body["checks"]["partitions"]["reason"], "schema_missing",
            "{body}"
        );
    }
    assert_eq!(far.flights() - before, 10, "one round trip per evaluation");
}
