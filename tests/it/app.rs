//! The `app` component against MeshHook's webhook route as MeshHook runs it
//! (`support::meshhook_app`: the route re-built with node-postgres on
//! Node.js, against a real Postgres): with its database up, stopped and
//! frozen, the process killed; and the platform's edge in front of it
//! (wiremock answering as Railway does).

use std::time::Duration;

use crate::support::meshhook_app::{MeshHookApp, SCHEMA};
use crate::support::wait::eventually;
use crate::support::{verbose, Postgres, Stack, SLACK};
use http::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A stack watching the database, the workers and MeshHook's app at `url`.
fn watching(stack: &mut Stack, url: &str) {
    stack
        .set("HEALTH_COMPONENTS", "database,workers,app")
        .set("MESHHOOK_URL", url);
}

/// (HTTP status, the app's entry).
async fn app_entry(stack: &Stack) -> (StatusCode, Value) {
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    (answer.status, body["checks"]["app"].clone())
}

/// MeshHook's app on a database of its own (which a test may stop or
/// freeze), watched by a stack; the app answers healthy first.
async fn app_on_its_own_database() -> (Postgres, Stack, MeshHookApp) {
    let pg = Postgres::dedicated();
    pg.execute("postgres", SCHEMA).await;
    let mut stack = Stack::new().await;
    let app = MeshHookApp::start(&pg.url("postgres"));
    watching(&mut stack, &app.url());
    let (_, entry) = app_entry(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
    (pg, stack, app)
}

#[tokio::test]
async fn meshhook_up_reads_healthy_and_the_probe_creates_no_run() {
    let mut stack = Stack::new().await;
    stack.sql(SCHEMA).await;
    stack
        .sql("INSERT INTO workflow_definitions (project_id, slug) VALUES (gen_random_uuid(), 'orders')")
        .await;
    let app = MeshHookApp::start(&stack.env["DATABASE_URL"]);
    watching(&mut stack, &app.url());
    for _ in 0..3 {
        let (status, entry) = app_entry(&stack).await;
        assert_eq!(status, StatusCode::OK, "{entry}");
        assert_eq!(entry["status"], "healthy", "{entry}");
        assert_eq!(
            entry["parts"],
            json!({"webhooks": "healthy", "ui": "healthy"})
        );
    }
    let runs = stack
        .pg()
        .value(&stack.db, "SELECT count(*) FROM workflow_runs")
        .await;
    assert_eq!(runs.as_deref(), Some("0"), "a probe never creates a run");
    // The route is the real thing: a workflow's own slug does create one.
    let created = crate::support::http_client()
        .post(format!("{}/api/hooks/orders", app.url()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let runs = stack
        .pg()
        .value(&stack.db, "SELECT count(*) FROM workflow_runs")
        .await;
    assert_eq!(runs.as_deref(), Some("1"));
}

#[tokio::test]
async fn an_app_that_cannot_reach_its_database_reads_app_error() {
    let pg = Postgres::dedicated();
    let mut stack = Stack::new().await;
    // The app's own database is one that is down when it starts: its pool
    // holds no connection, so every lookup fails with a 500.
    let url = pg.url("postgres");
    pg.stop();
    let app = MeshHookApp::start(&url);
    watching(&mut stack, &app.url());
    let (status, entry) = app_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{entry}");
    assert_eq!(entry["reason"], "app_error", "{entry}");
    assert_eq!(
        entry["parts"],
        json!({"webhooks": "unhealthy", "ui": "healthy"})
    );
}

#[tokio::test]
async fn the_app_dies_when_its_database_restarts_and_reads_unreachable() {
    let (pg, stack, mut app) = app_on_its_own_database().await;
    // MeshHook's pool keeps the connection and listens for no error on it:
    // the database going away kills the process.
    pg.stop();
    let exited = eventually("the app's exit", Duration::from_secs(20), async || {
        app.exited().ok_or("still running")
    })
    .await;
    assert!(!exited.success(), "{exited}");
    pg.start();
    let (status, entry) = app_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{entry}");
    assert_eq!(entry["reason"], "unreachable", "{entry}");
    assert_eq!(
        entry["parts"],
        json!({"webhooks": "unhealthy", "ui": "unhealthy"})
    );
}

#[tokio::test]
async fn a_frozen_database_hangs_the_route_and_the_answer_leaves_at_the_deadline() {
    let (pg, mut stack, _app) = app_on_its_own_database().await;
    stack.set("HEALTH_TIMEOUT_MS", "1000");
    pg.freeze();
    let answer = verbose(&stack.app()).await;
    pg.thaw();
    assert!(
        answer.elapsed < stack.timeout() + SLACK,
        "took {:?}",
        answer.elapsed
    );
    let entry = &answer.json()["checks"]["app"];
    assert_eq!(entry["reason"], "timeout", "{entry}");
    assert_eq!(entry["status"], "unhealthy", "{entry}");
}

#[tokio::test]
async fn a_killed_app_reads_unreachable() {
    let mut stack = Stack::new().await;
    stack.sql(SCHEMA).await;
    let app = MeshHookApp::start(&stack.env["DATABASE_URL"]);
    watching(&mut stack, &app.url());
    drop(app);
    let (status, entry) = app_entry(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(entry["reason"], "unreachable", "{entry}");
}

#[tokio::test]
async fn the_platforms_own_answers_have_their_reasons() {
    // (what the edge answers, the part's reason, the whole's HTTP status)
    let cases = [
        (
            ResponseTemplate::new(502).set_body_string("Application failed to respond"),
            "unreachable",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            ResponseTemplate::new(404).set_body_string("Application not found"),
            "not_meshhook",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            ResponseTemplate::new(301).insert_header("location", "https://elsewhere/"),
            "bad_status",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            ResponseTemplate::new(202),
            "bad_response",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (ResponseTemplate::new(429), "rate_limited", StatusCode::OK),
    ];
    for (answer, reason, http) in cases {
        let edge = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex(
                "^/api/hooks/meshhook-health-probe-[0-9a-f]{16}$",
            ))
            .respond_with(answer)
            .mount(&edge)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("^/auth/login$"))
            .respond_with(ResponseTemplate::new(200).insert_header("content-type", "text/html"))
            .mount(&edge)
            .await;
        let mut stack = Stack::new().await;
        watching(&mut stack, &edge.uri());
        let (status, entry) = app_entry(&stack).await;
        assert_eq!(entry["reason"], reason, "{entry}");
        assert_eq!(status, http, "{reason}: {entry}");
        // What the probe sent: JSON, `{}`, no signature, no secret.
        let sent = edge.received_requests().await.unwrap();
        let probe = sent.iter().find(|r| r.method.as_str() == "POST").unwrap();
        assert_eq!(probe.headers["content-type"], "application/json");
        assert_eq!(probe.body, b"{}");
        for header in [
            "x-signature",
            "x-hub-signature-256",
            "authorization",
            "apikey",
        ] {
            assert!(!probe.headers.contains_key(header), "{header} sent");
        }
    }
}

#[tokio::test]
async fn a_login_page_that_is_not_html_only_degrades() {
    let edge = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("unknown workflow"))
        .mount(&edge)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&edge)
        .await;
    let mut stack = Stack::new().await;
    watching(&mut stack, &edge.uri());
    let (status, entry) = app_entry(&stack).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["status"], "degraded", "{entry}");
    assert_eq!(entry["reason"], "app_error", "{entry}");
    assert_eq!(
        entry["parts"],
        json!({"webhooks": "healthy", "ui": "unhealthy"})
    );
}
