//! Truthful and bounded while things break: every fault below is answered
//! within the deadline, from a cold process (its first request) and from a
//! warm one (a process that has answered before, with its connections).

use std::sync::Arc;
use std::time::Duration;

use crate::support::net::{Behaviour, BlackHole, RawPeer};
use crate::support::{get, verbose, Answer, Postgres, Stack, SLACK};
use http::StatusCode;
use meshhook_health::component::{Check, CheckContext, Enabled};
use meshhook_health::config::Config;
use meshhook_health::evaluator::{CheckSet, ComponentCheck};
use meshhook_health::failure::Failure;
use meshhook_health::outcome::CheckOutcome;
use meshhook_health::App;
use wiremock::ResponseTemplate;

fn within_deadline(stack: &Stack, answer: &Answer) {
    // For docs/FAILURES.md's table: `cargo test --test it faults:: -- --nocapture --test-threads 1`.
    eprintln!(
        "measured: {} -> {} in {:.1} ms (deadline {} ms)",
        std::thread::current().name().unwrap_or("?"),
        answer.status.as_u16(),
        answer.elapsed.as_secs_f64() * 1000.0,
        stack.timeout().as_millis()
    );
    assert!(
        answer.elapsed < stack.timeout() + SLACK,
        "answered in {:?}, deadline {:?}",
        answer.elapsed,
        stack.timeout()
    );
}

/// Asserts `component` is unhealthy with `reason`, answered in time.
fn unhealthy(stack: &Stack, answer: &Answer, component: &str, reason: &str) {
    within_deadline(stack, answer);
    assert_eq!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        answer.text
    );
    let body = answer.json();
    assert_eq!(body["details"][component], "unhealthy", "{}", answer.text);
    assert_eq!(
        body["checks"][component]["reason"], reason,
        "{}",
        answer.text
    );
}

async fn stack_with_timeout(ms: &str) -> Stack {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_TIMEOUT_MS", ms);
    stack
}

#[tokio::test]
async fn frozen_database_answers_within_deadline_on_every_request_and_recovers_at_once() {
    let mut stack = Stack::dedicated().await;
    stack
        .set("HEALTH_TIMEOUT_MS", "150")
        .set("HEALTH_COMPONENTS", "database,workers");
    let app = stack.app();
    crate::support::until_healthy(&app).await;
    stack.pg().freeze();
    for _ in 0..10 {
        let answer = verbose(&app).await;
        unhealthy(&stack, &answer, "database", "timeout");
    }
    stack.pg().thaw();
    let answer = verbose(&app).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "first request after SIGCONT: {}",
        answer.text
    );
}

#[tokio::test]
async fn stopped_database_is_unhealthy_every_time_cold_and_warm() {
    let stack = Stack::dedicated().await;
    let warm = stack.app();
    assert_eq!(get(&warm, "/health").await.status, StatusCode::OK);
    stack.pg().stop();
    let cold = stack.app();
    for app in [&cold, &warm, &cold, &warm] {
        let answer = verbose(app).await;
        unhealthy(&stack, &answer, "database", "unreachable");
    }
}

#[tokio::test]
async fn unresolvable_host_is_unhealthy_within_the_deadline() {
    let mut stack = stack_with_timeout("150").await;
    stack.set(
        "DATABASE_URL",
        "postgres://app@db.meshhook-health.invalid:5432/postgres?sslmode=disable",
    );
    let app = stack.app();
    for _ in 0..3 {
        let answer = verbose(&app).await;
        within_deadline(&stack, &answer);
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        let reason = answer.json()["checks"]["database"]["reason"].clone();
        assert!(reason == "unreachable" || reason == "timeout", "{reason}");
    }
}

#[tokio::test]
async fn black_holed_port_is_unhealthy_within_the_deadline_cold() {
    let hole = BlackHole::new();
    let mut stack = stack_with_timeout("150").await;
    stack.set(
        "DATABASE_URL",
        &format!(
            "postgres://app@127.0.0.1:{}/postgres?sslmode=disable",
            hole.port
        ),
    );
    let app = stack.app();
    for _ in 0..3 {
        unhealthy(&stack, &verbose(&app).await, "database", "timeout");
    }
}

#[tokio::test]
async fn black_holed_traffic_is_unhealthy_within_the_deadline_warm_and_recovers() {
    let mut stack = stack_with_timeout("150").await;
    let proxy = stack.behind_proxy().await;
    let app = stack.app();
    crate::support::until_healthy(&app).await;
    proxy.black_hole();
    for _ in 0..3 {
        unhealthy(&stack, &verbose(&app).await, "database", "timeout");
    }
}

#[tokio::test]
async fn wrong_password_is_unhealthy_auth_cold_and_warm() {
    let pg = Postgres::dedicated_with_passwords().await;
    let mut stack = stack_with_timeout("2000").await;
    stack.set("HEALTH_COMPONENTS", "database");
    let url = |password: &str| {
        format!(
            "postgres://app:{password}@127.0.0.1:{}/postgres?sslmode=disable",
            pg.port()
        )
    };

    stack.set("DATABASE_URL", &url("not-the-password"));
    let cold = stack.app();
    for _ in 0..2 {
        unhealthy(&stack, &verbose(&cold).await, "database", "auth");
    }

    stack.set("DATABASE_URL", &url("app-password"));
    let warm = stack.app();
    assert_eq!(verbose(&warm).await.status, StatusCode::OK);
    // The password is rotated and the old session ends: the process must
    // notice on its next reconnect.
    pg.execute(
        "postgres",
        "ALTER ROLE app PASSWORD 'rotated'; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'",
    )
    .await;
    for _ in 0..2 {
        unhealthy(&stack, &verbose(&warm).await, "database", "auth");
    }
}

#[tokio::test]
async fn missing_database_is_unhealthy_cold_and_warm() {
    let mut stack = stack_with_timeout("2000").await;
    stack.set("HEALTH_COMPONENTS", "database");
    let base = stack.env["DATABASE_URL"].clone();
    stack.set(
        "DATABASE_URL",
        &base.replace(&format!("/{}?", stack.db), "/no_such_database?"),
    );
    let cold = stack.app();
    unhealthy(&stack, &verbose(&cold).await, "database", "auth");

    let db = stack.pg().create_database().await;
    stack.set(
        "DATABASE_URL",
        &base.replace(&format!("/{}?", stack.db), &format!("/{db}?")),
    );
    let warm = stack.app();
    assert_eq!(verbose(&warm).await.status, StatusCode::OK);
    stack
        .pg()
        .execute("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"))
        .await;
    for _ in 0..2 {
        unhealthy(&stack, &verbose(&warm).await, "database", "auth");
    }
}

/// Supabase misbehaving one way or another: unhealthy within the deadline,
/// on the first request and on later ones.
async fn supabase_fault(stack: &Stack, reason: &str) {
    let app = stack.app();
    for _ in 0..3 {
        let answer = verbose(&app).await;
        unhealthy(stack, &answer, "supabase", reason);
        assert_eq!(answer.json()["details"]["database"], "healthy");
    }
}

#[tokio::test]
async fn supabase_that_accepts_and_never_answers() {
    let peer = RawPeer::start(Behaviour::Silent).await;
    let mut stack = stack_with_timeout("150").await;
    stack.set("SUPABASE_URL", &peer.url());
    supabase_fault(&stack, "timeout").await;
}

#[tokio::test]
async fn supabase_that_resets_connections() {
    let peer = RawPeer::start(Behaviour::Reset).await;
    let mut stack = stack_with_timeout("2000").await;
    stack.set("SUPABASE_URL", &peer.url());
    supabase_fault(&stack, "unreachable").await;
}

#[tokio::test]
async fn supabase_that_answers_after_two_seconds() {
    let stack = stack_with_timeout("150").await;
    for route in ["/auth/v1/health", "/realtime/v1/websocket"] {
        let slow = ResponseTemplate::new(200)
            .set_body_string(crate::support::supabase::fixture("auth_health.json"))
            .set_delay(Duration::from_secs(2));
        stack.supabase.answer(route, slow).await;
    }
    supabase_fault(&stack, "timeout").await;
}

#[tokio::test]
async fn supabase_that_answers_html_with_200() {
    let mut stack = stack_with_timeout("2000").await;
    stack.set("SUPABASE_SERVICES", "auth");
    let html = ResponseTemplate::new(200)
        .insert_header("content-type", "text/html")
        .set_body_string("<!doctype html><title>Project paused</title>");
    stack.supabase.answer("/auth/v1/health", html).await;
    supabase_fault(&stack, "bad_response").await;
}

#[tokio::test]
async fn supabase_that_answers_503() {
    let stack = stack_with_timeout("2000").await;
    for route in ["/auth/v1/health", "/realtime/v1/websocket"] {
        stack
            .supabase
            .answer(route, ResponseTemplate::new(503))
            .await;
    }
    supabase_fault(&stack, "bad_status").await;
}

#[tokio::test]
async fn supabase_going_silent_after_answering_is_unhealthy_in_time() {
    let stack = stack_with_timeout("150").await;
    let app = stack.app();
    crate::support::until_healthy(&app).await;
    stack.supabase.hang("/auth/v1/health").await;
    stack.supabase.hang("/realtime/v1/websocket").await;
    for _ in 0..2 {
        unhealthy(&stack, &verbose(&app).await, "supabase", "timeout");
    }
}

/// A check with a bug.
struct Panicking;

impl Check for Panicking {
    async fn observe(&self, _context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        panic!("a bug inside a check")
    }
}

#[tokio::test]
async fn a_panicking_check_costs_its_component_not_the_answer_or_the_process() {
    for ttl in ["0", "1"] {
        let mut stack = Stack::new().await;
        stack.set("HEALTH_CACHE_TTL_MS", ttl);
        let config = Config::from_source(&stack.env).unwrap();
        let checks = CheckSet {
            checks: vec![ComponentCheck {
                enabled: Enabled::for_test("supabase", true),
                check: Box::new(Panicking),
            }],
            database: None,
        };
        let app = Arc::new(App::with_checks(config, checks));
        let (addr, server) = crate::support::spawn_serve(app.clone()).await;
        let client = crate::support::http_client();
        for _ in 0..3 {
            let response = client
                .get(format!("http://{addr}/health"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 500);
            assert_eq!(response.headers()["content-type"], "application/json");
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(body["details"]["supabase"], "unhealthy");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!server.is_finished(), "the server kept serving");
    }
}
