//! `/health` end to end through the shared HTTP handler, against real
//! Postgres clusters and the Supabase stand-in.

use std::time::{Duration, SystemTime};

use crate::support::wait::eventually;
use crate::support::{call, get, supabase, verbose, Stack, SLACK};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::ResponseTemplate;

#[tokio::test]
async fn all_healthy_answers_200_with_the_exact_public_shape() {
    let stack = Stack::new().await;
    let answer = get(&stack.app(), "/health").await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert!(answer.text.starts_with(r#"{"status":"healthy","version":"1.4.2","details":{"database":"healthy","supabase":"healthy","workers":"healthy"},"checked_at":""#), "{}", answer.text);
    assert!(answer.text.len() < 1024);
    let body = answer.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["checked_at", "details", "status", "version"]);
    let checked_at = body["checked_at"].as_str().unwrap();
    assert!(
        checked_at.ends_with('Z') && checked_at.len() == 24,
        "{checked_at}"
    );
    let when = humantime::parse_rfc3339(checked_at).unwrap();
    assert!(SystemTime::now().duration_since(when).unwrap() < Duration::from_secs(5));
}

#[tokio::test]
async fn public_body_names_no_host_port_user_or_error() {
    let mut stack = Stack::new().await;
    // Everything failing, so that error text exists internally.
    stack.set(
        "DATABASE_URL",
        "postgres://secretuser:secretpw@127.0.0.1:1/secretdb?sslmode=disable",
    );
    stack
        .supabase
        .answer("/auth/v1/health", ResponseTemplate::new(503))
        .await;
    let app = stack.app();
    for target in ["/health", "/health?verbose=1"] {
        let answer = call(
            &app,
            Method::GET,
            target,
            Some(crate::support::DETAILS_TOKEN),
        )
        .await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        for leak in [
            "secretuser",
            "secretpw",
            "secretdb",
            "127.0.0.1",
            "refused",
            "error",
            "postgres",
        ] {
            assert!(
                !answer.text.contains(leak),
                "{leak} leaked: {}",
                answer.text
            );
        }
        let port = stack.supabase.port().to_string();
        assert!(!answer.text.contains(&port));
    }
}

#[tokio::test]
async fn stopped_database_answers_500_within_the_deadline() {
    let stack = Stack::dedicated().await;
    let app = stack.app();
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);

    stack.pg().stop();
    for _ in 0..3 {
        let answer = verbose(&app).await;
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            answer.text
        );
        assert!(
            answer.elapsed < stack.timeout() + SLACK,
            "took {:?}",
            answer.elapsed
        );
        let body = answer.json();
        assert_eq!(body["details"]["database"], "unhealthy");
        assert_eq!(body["details"]["workers"], "unhealthy");
        assert_eq!(body["details"]["supabase"], "healthy");
        assert_eq!(body["checks"]["database"]["reason"], "unreachable");
    }
}

#[tokio::test]
async fn restarted_database_is_healthy_on_the_next_request() {
    let stack = Stack::dedicated().await;
    let app = stack.app();
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    let connection = app.evaluator.database().unwrap().open_connections();
    assert_eq!(connection, 1, "the connection is kept for the next request");

    // The pooled connection dies with the server; the next request must
    // replace it and not report an outage.
    stack.pg().stop();
    stack.pg().start();
    let answer = verbose(&app).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["details"]["database"], "healthy");
}

#[tokio::test]
async fn frozen_database_answers_unhealthy_within_the_deadline_and_recovers() {
    let mut stack = Stack::dedicated().await;
    stack.set("HEALTH_TIMEOUT_MS", "300");
    let app = stack.app();
    crate::support::until_healthy(&app).await;

    stack.pg().freeze();
    for _ in 0..2 {
        let answer = verbose(&app).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            answer.elapsed < stack.timeout() + SLACK,
            "took {:?}",
            answer.elapsed
        );
        assert_eq!(answer.json()["checks"]["database"]["reason"], "timeout");
    }
    stack.pg().thaw();
    let answer = get(&app, "/health").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

async fn supabase_with(
    route: &str,
    template: ResponseTemplate,
    services: &str,
) -> (Stack, crate::support::Answer) {
    let mut stack = Stack::new().await;
    stack.set("SUPABASE_SERVICES", services);
    stack.supabase.answer(route, template).await;
    let answer = verbose(&stack.app()).await;
    (stack, answer)
}

#[tokio::test]
async fn supabase_with_a_wrong_key_is_unhealthy_auth() {
    let mut stack = Stack::new().await;
    stack.set("SUPABASE_ANON_KEY", "sb_publishable_wrong");
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.json();
    assert_eq!(body["details"]["supabase"], "unhealthy");
    assert_eq!(body["checks"]["supabase"]["reason"], "auth");
    assert_eq!(
        body["checks"]["supabase"]["services"],
        json!({"auth": "unhealthy", "rest": "unhealthy", "realtime": "unhealthy"})
    );
}

#[tokio::test]
async fn supabase_that_never_answers_is_unhealthy_within_the_deadline() {
    let mut stack = Stack::new().await;
    stack.supabase.hang("/auth/v1/health").await;
    stack.supabase.hang("/realtime/v1/websocket").await;
    // Long enough for the database check on a busy machine, short enough
    // that a hang shows.
    stack.set("HEALTH_TIMEOUT_MS", "1000");
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        answer.elapsed < stack.timeout() + SLACK,
        "took {:?}",
        answer.elapsed
    );
    let body = answer.json();
    assert_eq!(body["details"]["supabase"], "unhealthy");
    assert_eq!(body["checks"]["supabase"]["reason"], "timeout");
    assert_eq!(body["details"]["database"], "healthy");
}

/// One Supabase answer and what it makes of the answer: (what, route,
/// its answer, services asked, HTTP status, overall status, the
/// component's status and reason, its services when checked).
type SupabaseCase = (
    &'static str,
    &'static str,
    ResponseTemplate,
    &'static str,
    StatusCode,
    &'static str,
    &'static str,
    &'static str,
    Option<Value>,
);

#[tokio::test]
async fn each_supabase_answer_has_its_verdict() {
    let html = ResponseTemplate::new(200)
        .insert_header("content-type", "text/html")
        .set_body_string("<html>maintenance</html>");
    let cases: [SupabaseCase; 3] = [
        (
            "a 5xx",
            "/auth/v1/health",
            ResponseTemplate::new(503).set_body_string("upstream"),
            "auth",
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy",
            "unhealthy",
            "bad_status",
            Some(json!({"auth": "unhealthy"})),
        ),
        (
            "a garbage body",
            "/auth/v1/health",
            html,
            "auth",
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy",
            "unhealthy",
            "bad_response",
            None,
        ),
        (
            "one service down",
            "/realtime/v1/websocket",
            ResponseTemplate::new(500),
            "auth,realtime,rest,storage",
            StatusCode::OK,
            "degraded",
            "degraded",
            "bad_status",
            Some(
                json!({"auth": "healthy", "realtime": "unhealthy", "rest": "healthy", "storage": "healthy"}),
            ),
        ),
    ];
    for (what, route, template, services, http, overall, component, reason, each) in cases {
        let (_stack, answer) = supabase_with(route, template, services).await;
        assert_eq!(answer.status, http, "{what}: {}", answer.text);
        let body = answer.json();
        assert_eq!(body["status"], overall, "{what}: {body}");
        assert_eq!(body["details"]["supabase"], component, "{what}: {body}");
        assert_eq!(
            body["checks"]["supabase"]["reason"], reason,
            "{what}: {body}"
        );
        if let Some(each) = each {
            assert_eq!(
                body["checks"]["supabase"]["services"], each,
                "{what}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn jwt_shaped_keys_are_also_sent_as_bearer() {
    let mut stack = Stack::new().await;
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl";
    stack
        .set("SUPABASE_ANON_KEY", jwt)
        .set("SUPABASE_SERVICES", "auth");
    let _ = get(&stack.app(), "/health").await;
    let requests = stack.supabase.requests_to("/auth/v1/health").await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["apikey"], jwt);
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {jwt}").as_str()
    );

    let sb_key = Stack::new().await;
    let _ = get(&sb_key.app(), "/health").await;
    let requests = sb_key.supabase.requests_to("/auth/v1/health").await;
    assert!(requests[0].headers.get("authorization").is_none());
}

fn management(stack: &mut Stack, services: &str) {
    let url = stack.supabase.url();
    stack
        .set("SUPABASE_ACCESS_TOKEN", supabase::ACCESS_TOKEN)
        .set("SUPABASE_PROJECT_REF", supabase::PROJECT_REF)
        .set("SUPABASE_API_URL", &url)
        .set("SUPABASE_SERVICES", services);
}

#[tokio::test]
async fn management_api_statuses_map_as_documented() {
    // The fixture: auth, realtime, rest ACTIVE_HEALTHY; storage COMING_UP; db UNHEALTHY.
    let mut stack = Stack::new().await;
    management(&mut stack, "auth,realtime,rest");
    let answer = verbose(&stack.app()).await;
    assert_eq!(
        answer.json()["details"]["supabase"],
        "healthy",
        "{}",
        answer.text
    );
    let requests = stack
        .supabase
        .requests_to(&format!("/v1/projects/{}/health", supabase::PROJECT_REF))
        .await;
    assert_eq!(
        requests[0].url.query(),
        Some("services=auth&services=realtime&services=rest")
    );

    management(&mut stack, "auth,storage");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["details"]["supabase"], "degraded",
        "COMING_UP degrades"
    );
    assert_eq!(
        body["checks"]["supabase"]["services"],
        json!({"auth": "healthy", "storage": "degraded"})
    );

    management(&mut stack, "db");
    stack.set("SUPABASE_CRITICAL_SERVICES", "db");
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.json()["checks"]["supabase"]["services"],
        json!({"db": "unhealthy"})
    );

    management(&mut stack, "pooler");
    stack.set("SUPABASE_CRITICAL_SERVICES", "pooler");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["details"]["supabase"], "unhealthy",
        "a service absent from the answer is unhealthy"
    );

    management(&mut stack, "auth,rest,db");
    stack.unset("SUPABASE_CRITICAL_SERVICES");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["details"]["supabase"], "degraded",
        "db is not critical by default: it down only degrades"
    );
}

#[tokio::test]
async fn auth_or_the_data_api_down_alone_is_unhealthy_and_realtime_down_only_degrades() {
    // The defaults: auth, rest and realtime probed; auth and rest critical.
    for (route, status, overall) in [
        (
            "/auth/v1/health",
            "unhealthy",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            "/rest/v1/meshhook_health_probe",
            "unhealthy",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        ("/realtime/v1/websocket", "degraded", StatusCode::OK),
    ] {
        let stack = Stack::new().await;
        stack
            .supabase
            .answer(route, ResponseTemplate::new(503))
            .await;
        let answer = verbose(&stack.app()).await;
        assert_eq!(answer.status, overall, "{route} down: {}", answer.text);
        let body = answer.json();
        assert_eq!(body["details"]["supabase"], status, "{route} down");
        assert_eq!(body["checks"]["supabase"]["reason"], "bad_status");
        let services = &body["checks"]["supabase"]["services"];
        assert_eq!(services.as_object().unwrap().len(), 3, "{services}");
    }

    // Only auth critical: the Data API down now only degrades.
    let mut stack = Stack::new().await;
    stack.set("SUPABASE_CRITICAL_SERVICES", "auth");
    stack
        .supabase
        .answer("/rest/v1/meshhook_health_probe", ResponseTemplate::new(503))
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["details"]["supabase"], "degraded");
}

#[tokio::test]
async fn management_api_rate_limit_degrades_and_wrong_token_is_auth() {
    let mut stack = Stack::new().await;
    management(&mut stack, "auth");
    stack
        .supabase
        .management_answer(
            ResponseTemplate::new(429).set_body_string(r#"{"message":"Too many requests"}"#),
        )
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["details"]["supabase"], "degraded");
    assert_eq!(body["checks"]["supabase"]["reason"], "rate_limited");

    let mut stack = Stack::new().await;
    management(&mut stack, "auth");
    stack.set("SUPABASE_ACCESS_TOKEN", "sbp_wrong");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(body["details"]["supabase"], "unhealthy");
    assert_eq!(body["checks"]["supabase"]["reason"], "auth");

    let mut stack = Stack::new().await;
    management(&mut stack, "auth");
    stack
        .supabase
        .management_answer(ResponseTemplate::new(200).set_body_string("not json"))
        .await;
    let body = verbose(&stack.app()).await.json();
    assert_eq!(body["checks"]["supabase"]["reason"], "bad_response");
}

#[tokio::test]
async fn each_heartbeat_state_has_its_verdict() {
    // (what, SQL on the stack's one alive orchestrator, HTTP status, the
    // component's status and reason, the counts then shown).
    let cases = [
        ("one alive", "SELECT 1", StatusCode::OK, "healthy", None, json!({"alive": 1, "stale": 0, "min_alive": 1})),
        (
            "one stale beside it",
            "INSERT INTO monitoring.worker_heartbeats (worker_id, last_seen_at) VALUES ('w-stale', now() - interval '120 seconds')",
            StatusCode::OK,
            "degraded",
            Some("stale_workers"),
            json!({"stale": 1}),
        ),
        (
            "none alive",
            "UPDATE monitoring.worker_heartbeats SET last_seen_at = now() - interval '61 seconds'",
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy",
            Some("too_few_workers"),
            json!({"alive": 0}),
        ),
        (
            "one past the forget horizon",
            "INSERT INTO monitoring.worker_heartbeats (worker_id, last_seen_at) VALUES ('w-crashed', now() - interval '901 seconds')",
            StatusCode::OK,
            "healthy",
            None,
            json!({"stale": 0}),
        ),
    ];
    for (what, sql, http, status, reason, counts) in cases {
        let stack = Stack::new().await;
        stack.sql(sql).await;
        let answer = verbose(&stack.app()).await;
        assert_eq!(answer.status, http, "{what}: {}", answer.text);
        let body = answer.json();
        let workers = &body["checks"]["workers"];
        assert_eq!(body["status"], status, "{what}: {body}");
        assert_eq!(body["details"]["workers"], status, "{what}: {body}");
        assert_eq!(
            workers.get("reason").and_then(Value::as_str),
            reason,
            "{what}: {body}"
        );
        for (count, value) in counts.as_object().unwrap() {
            assert_eq!(&workers[count], value, "{what}: {count} in {body}");
        }
    }
}

#[tokio::test]
async fn custom_thresholds_come_from_the_environment() {
    let mut stack = Stack::new().await;
    stack
        .sql("INSERT INTO monitoring.worker_heartbeats (worker_id, last_seen_at) VALUES ('w-20s', now() - interval '20 seconds')")
        .await;
    stack
        .set("WORKER_STALE_AFTER_SECS", "10")
        .set("WORKER_FORGET_AFTER_SECS", "30");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(body["checks"]["workers"]["stale"], 1);
    stack
        .set("WORKER_FORGET_AFTER_SECS", "15")
        .set("WORKER_MIN_ALIVE", "2");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(body["checks"]["workers"]["stale"], 0);
    assert_eq!(body["checks"]["workers"]["reason"], "too_few_workers");
    assert_eq!(body["checks"]["workers"]["min_alive"], 2);
}

#[tokio::test]
async fn per_kind_minimums_are_enforced() {
    let mut stack = Stack::new().await;
    stack
        .sql("INSERT INTO monitoring.worker_heartbeats (worker_id, kind) VALUES ('exec-1', 'http-exec')")
        .await;
    stack.set("WORKER_MIN_ALIVE_BY_KIND", "orchestrator=1,http-exec=2");
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.json()["checks"]["workers"]["reason"],
        "too_few_workers"
    );

    stack
        .sql("INSERT INTO monitoring.worker_heartbeats (worker_id, kind) VALUES ('exec-2', 'http-exec')")
        .await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["details"]["workers"], "healthy");
}

/// After the first evaluation the heartbeats are read through
/// `monitoring.worker_readings_v1()`, with the thresholds as its arguments
/// in order: a doctored function (it echoes them as counts) shows which
/// path answered.
#[tokio::test]
async fn heartbeats_are_read_through_the_migrated_function_after_the_first_evaluation() {
    let mut stack = Stack::new().await;
    stack
        .set("WORKER_STALE_AFTER_SECS", "7")
        .set("WORKER_FORGET_AFTER_SECS", "11");
    let app = stack.app();
    let body = verbose(&app).await.json();
    assert_eq!(body["checks"]["workers"]["alive"], 1, "{body}");
    stack
        .sql(
            "CREATE OR REPLACE FUNCTION monitoring.worker_readings_v1(stale_after_secs double precision, \
             forget_after_secs double precision) RETURNS TABLE (worker_kind text, worker_version text, \
             alive bigint, stale bigint, newest_alive_start double precision) LANGUAGE sql \
             AS $$ SELECT 'worker', NULL, $1::bigint - 7, $2::bigint, NULL::float8 $$",
        )
        .await;
    let body = verbose(&app).await.json();
    let workers = &body["checks"]["workers"];
    assert_eq!(workers["alive"], 0, "{body}");
    assert_eq!(workers["stale"], 11, "{body}");
    assert_eq!(workers["reason"], "too_few_workers", "{body}");
}

#[tokio::test]
async fn missing_heartbeat_table_is_schema_missing_and_database_stays_healthy() {
    let stack = Stack::new().await;
    stack.sql("DROP SCHEMA monitoring CASCADE").await;
    let answer = verbose(&stack.app()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.json();
    assert_eq!(body["details"]["database"], "healthy");
    assert_eq!(body["details"]["workers"], "unhealthy");
    assert_eq!(body["checks"]["workers"]["reason"], "schema_missing");
}

#[tokio::test]
async fn noncritical_failure_only_degrades_and_unhealthy_status_is_configurable() {
    let mut stack = Stack::new().await;
    stack
        .supabase
        .answer("/auth/v1/health", ResponseTemplate::new(500))
        .await;
    stack
        .supabase
        .answer("/realtime/v1/websocket", ResponseTemplate::new(500))
        .await;
    stack.set("HEALTH_NONCRITICAL", "supabase");
    let answer = get(&stack.app(), "/health").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["status"], "degraded");
    assert_eq!(answer.json()["details"]["supabase"], "unhealthy");

    stack
        .unset("HEALTH_NONCRITICAL")
        .set("HEALTH_UNHEALTHY_STATUS", "503");
    let answer = get(&stack.app(), "/health").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["status"], "unhealthy");
}

#[tokio::test]
async fn details_lists_only_enabled_components() {
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_COMPONENTS", "workers,database")
        .unset("SUPABASE_URL");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["details"],
        json!({"database": "healthy", "workers": "healthy"})
    );
    assert!(body["checks"].get("supabase").is_none());
}

#[tokio::test]
async fn verbose_body_needs_the_right_token() {
    let stack = Stack::new().await;
    let app = stack.app();
    let right = call(
        &app,
        Method::GET,
        "/health?verbose=1",
        Some(crate::support::DETAILS_TOKEN),
    )
    .await;
    let body = right.json();
    assert_eq!(right.status, StatusCode::OK);
    let database = &body["checks"]["database"];
    assert_eq!(database["status"], "healthy");
    assert!(database["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        body["checks"]["supabase"]["services"],
        json!({"auth": "healthy", "rest": "healthy", "realtime": "healthy"})
    );

    for token in [Some("wrong-token"), Some(""), None] {
        let answer = call(&app, Method::GET, "/health?verbose=1", token).await;
        assert_eq!(answer.status, StatusCode::OK, "never 401");
        assert!(
            answer.json().get("checks").is_none(),
            "token {token:?} saw details"
        );
    }
    // A token is useless while the operator has not set one.
    let mut no_token = Stack::new().await;
    no_token.unset("HEALTH_DETAILS_TOKEN");
    let answer = call(
        &no_token.app(),
        Method::GET,
        "/health?verbose=1",
        Some(crate::support::DETAILS_TOKEN),
    )
    .await;
    assert!(answer.json().get("checks").is_none());
}

#[tokio::test]
async fn methods_and_unknown_paths_are_refused_with_json() {
    let stack = Stack::new().await;
    let app = stack.app();
    for path in ["/health", "/health/live", "/health/"] {
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            let answer = call(&app, method.clone(), path, None).await;
            assert_eq!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(answer.headers["allow"], "GET, HEAD");
            assert_eq!(answer.headers["content-type"], "application/json");
            assert_eq!(answer.headers["cache-control"], "no-store");
            assert_eq!(answer.json(), json!({"error": "method not allowed"}));
        }
    }
    for path in ["/", "/healthz", "/health/deep", "/api/health", "/Health"] {
        let answer = get(&app, path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.json(), json!({"error": "not found"}));
        assert_eq!(answer.headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn live_answers_without_touching_any_dependency() {
    let mut stack = Stack::new().await;
    stack.set(
        "DATABASE_URL",
        "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
    );
    stack.supabase.hang("/auth/v1/health").await;
    let app = stack.app();
    let before = stack
        .supabase
        .server
        .received_requests()
        .await
        .unwrap()
        .len();
    for path in ["/health/live", "/health/live/"] {
        let answer = get(&app, path).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text, r#"{"status":"healthy","version":"1.4.2"}"#);
    }
    assert_eq!(
        stack
            .supabase
            .server
            .received_requests()
            .await
            .unwrap()
            .len(),
        before
    );
}

#[tokio::test]
async fn cached_result_is_served_with_its_original_checked_at() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_CACHE_TTL_MS", "60000");
    let app = stack.app();
    let first = get(&app, "/health").await.json();
    let second = get(&app, "/health").await.json();
    assert_eq!(first["checked_at"], second["checked_at"]);
    assert_eq!(stack.supabase.requests_to("/auth/v1/health").await.len(), 1);
}

#[tokio::test]
async fn concurrent_requests_share_one_evaluation() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_CACHE_TTL_MS", "1000");
    let app = stack.app();
    let answers = futures_util::future::join_all((0..25).map(|_| get(&app, "/health"))).await;
    let first = answers[0].json()["checked_at"].clone();
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json()["checked_at"], first);
    }
    assert_eq!(stack.supabase.requests_to("/auth/v1/health").await.len(), 1);
}

#[tokio::test]
async fn without_cache_the_process_holds_at_most_pool_max_connections() {
    let stack = Stack::dedicated().await;
    let app = stack.app();
    let answers = futures_util::future::join_all((0..30).map(|_| get(&app, "/health"))).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!(stack.pg().connections_of_health().await, 1);
}

#[tokio::test]
async fn sslmode_prefer_falls_back_to_plain_and_require_fails_without_server_tls() {
    let mut stack = Stack::new().await;
    let base = stack.env["DATABASE_URL"].replace("sslmode=disable", "");
    stack.set("DATABASE_URL", &format!("{base}sslmode=prefer"));
    assert_eq!(
        verbose(&stack.app()).await.json()["details"]["database"],
        "healthy"
    );

    stack.set("DATABASE_URL", &format!("{base}sslmode=require"));
    let body = verbose(&stack.app()).await.json();
    assert_eq!(body["details"]["database"], "unhealthy");
    assert_eq!(body["checks"]["database"]["reason"], "tls");
}

#[tokio::test]
async fn connection_is_opened_at_start_up_before_any_request() {
    let stack = Stack::dedicated().await;
    let app = stack.app();
    eventually(
        "a connection opened ahead of use",
        Duration::from_secs(5),
        async || match stack.pg().connections_of_health().await {
            0 => Err(0),
            n => Ok(n),
        },
    )
    .await;
    assert_eq!(app.evaluator.database().unwrap().open_connections(), 1);
}

#[tokio::test]
async fn connection_closed_by_the_server_is_replaced_without_an_outage() {
    let stack = Stack::new().await;
    let app = stack.app();
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    // What an idle timeout on the server or pooler does while a Lambda
    // container is frozen.
    stack
        .sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'meshhook-health' AND datname = '{}'",
            stack.db
        ))
        .await;
    for _ in 0..3 {
        let answer = verbose(&app).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
}

#[tokio::test]
async fn a_request_that_goes_away_does_not_cancel_the_shared_evaluation() {
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_CACHE_TTL_MS", "1000")
        .set("HEALTH_TIMEOUT_MS", "400");
    stack.supabase.hang("/auth/v1/health").await;
    let app = stack.app();
    // The first caller hangs up after 100 ms; the evaluation goes on.
    let first = tokio::time::timeout(Duration::from_millis(100), get(&app, "/health")).await;
    assert!(first.is_err());
    let second = get(&app, "/health").await;
    assert_eq!(second.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Joined the running evaluation (one request reached Supabase), and
    // answered by its deadline.
    assert!(
        second.elapsed < stack.timeout() + SLACK,
        "took {:?}",
        second.elapsed
    );
    assert_eq!(stack.supabase.requests_to("/auth/v1/health").await.len(), 1);
}

#[tokio::test]
async fn pooled_connection_that_died_unseen_is_replaced_and_the_check_retried() {
    let mut stack = Stack::new().await;
    let proxy = stack.behind_proxy().await;
    let app = stack.app();
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);

    // The connection looks open to the pool, but is dead: the first query on
    // it fails, and the check must retry on a new connection in time.
    proxy.sever_all();
    for _ in 0..3 {
        let answer = verbose(&app).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert!(answer.elapsed < stack.timeout() + SLACK);
        proxy.sever_all();
    }
}

#[tokio::test]
async fn an_evaluation_gives_its_connection_back_when_its_database_checks_are_done() {
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_TIMEOUT_MS", "5000")
        .set("SUPABASE_SERVICES", "auth");
    let slow = ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_string(supabase::fixture("auth_health.json"))
        .set_delay(Duration::from_millis(3000));
    stack.supabase.answer("/auth/v1/health", slow).await;
    let app = stack.app();
    let request = {
        let app = app.clone();
        tokio::spawn(async move { get(&app, "/health").await })
    };
    // While Supabase still holds the evaluation, the database checks end
    // (Postgres saw the workers statement on our connection) and their
    // connection is back in the pool.
    let database = app.evaluator.database().unwrap();
    let workers_ran = "SELECT count(*) FROM pg_stat_activity \
                       WHERE datname = current_database() AND application_name = 'meshhook-health' \
                       AND query LIKE '%worker_heartbeats%'";
    eventually(
        "the connection back in the pool while only Supabase is pending",
        Duration::from_millis(2500),
        async || {
            let ran = stack.pg().value(&stack.db, workers_ran).await;
            let idle = database.idle_connections();
            (ran.as_deref() == Some("1") && idle == 1)
                .then_some(())
                .ok_or((ran, idle))
        },
    )
    .await;
    assert!(!request.is_finished(), "the evaluation was still running");
    let answer = request.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn without_meshhook_version_the_newest_alive_workers_version_is_reported() {
    let mut stack = Stack::new().await;
    stack.unset("MESHHOOK_VERSION");
    let app = stack.app();
    // Before any evaluation, liveness knows no version, and says so.
    let live = get(&app, "/health/live").await;
    assert_eq!(live.text, r#"{"status":"healthy","version":"unknown"}"#);

    // The stack's own worker reports no version; a rollout from 1.4.1 to
    // 1.4.2 is under way; a stale worker still reports 1.5.0-rc.
    stack
        .sql(
            "INSERT INTO monitoring.worker_heartbeats (worker_id, kind, version, started_at) VALUES \
             ('old-1', 'orchestrator', '1.4.1', now() - interval '2 hours'), \
             ('old-2', 'http-exec', '1.4.1', now() - interval '2 hours'), \
             ('new-1', 'orchestrator', '1.4.2', now() - interval '5 minutes'); \
             INSERT INTO monitoring.worker_heartbeats (worker_id, version, started_at, last_seen_at) VALUES \
             ('gone', '1.5.0-rc', now() - interval '1 minute', now() - interval '5 minutes')",
        )
        .await;
    let answer = verbose(&app).await;
    let body = answer.json();
    assert_eq!(body["version"], "1.4.2", "{}", answer.text);
    assert_eq!(body["checker_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        body["checks"]["workers"]["versions"],
        json!({"1.4.1": 2, "1.4.2": 1, "unknown": 1})
    );
    let public = get(&app, "/health").await.json();
    assert_eq!(public["version"], "1.4.2");
    assert!(public.get("checker_version").is_none(), "verbose only");
    let live = get(&app, "/health/live").await;
    assert_eq!(live.text, r#"{"status":"healthy","version":"1.4.2"}"#);

    // No alive worker reports a version: "unknown", never the checker's.
    stack
        .sql("UPDATE monitoring.worker_heartbeats SET version = NULL WHERE worker_id <> 'gone'")
        .await;
    let body = get(&app, "/health").await.json();
    assert_eq!(body["version"], "unknown");

    // MESHHOOK_VERSION, when set, wins.
    stack.set("MESHHOOK_VERSION", "2.0.0");
    assert_eq!(
        get(&stack.app(), "/health").await.json()["version"],
        "2.0.0"
    );
}

/// The first evaluation reads a row per heartbeat and groups them in the
/// checker; later ones call the function, which groups them on the server.
/// Both give the same groups: alive, stale and forgotten heartbeats of
/// several kinds, versions missing, empty and set, starts to the
/// microsecond.
#[tokio::test]
async fn heartbeats_grouped_inline_equal_the_functions_groups() {
    let stack = Stack::new().await;
    stack
        .sql(
            "INSERT INTO monitoring.worker_heartbeats (worker_id, kind, version, started_at, last_seen_at) VALUES \
             ('a1', 'orchestrator', 'v2', now() - interval '3 days 0.123457 s', now() - interval '5 s'), \
             ('a2', 'orchestrator', 'v2', now() - interval '1 hour 0.000001 s', now() - interval '10 s'), \
             ('a3', 'orchestrator', 'v1', now() - interval '2 hours', now() - interval '20 s'), \
             ('s1', 'orchestrator', 'v1', now() - interval '1 day', now() - interval '300 s'), \
             ('e1', 'http-exec', '', now() - interval '7 s', now() - interval '1 s'), \
             ('e2', 'http-exec', NULL, now() - interval '70 s', now() - interval '2 s'), \
             ('e3', 'http-exec', NULL, now() - interval '10 days', now() - interval '600 s'), \
             ('f1', 'http-exec', 'v0', now() - interval '30 days', now() - interval '2 hours'), \
             ('p1', 'pre-2000', 'v9', '1999-12-31 23:59:59.5+00', now() - interval '3 s')",
        )
        .await;
    let (client, connection) =
        tokio_postgres::connect(&stack.env["DATABASE_URL"], tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let (inline, function) =
        meshhook_health::checks::workers::groups_both_ways(&client, 60.0, 900.0)
            .await
            .unwrap();
    assert_eq!(inline, function);
    // Every kind of row was there: alive and stale in one group, a
    // forgotten one in none, an empty version read as none.
    let summary: Vec<_> = inline
        .iter()
        .map(|g| (g.kind.as_str(), g.version.as_deref(), g.alive, g.stale))
        .collect();
    assert_eq!(
        summary,
        [
            ("http-exec", None, 2, 1),
            // The stack's own worker.
            ("orchestrator", None, 1, 0),
            ("orchestrator", Some("v1"), 1, 1),
            ("orchestrator", Some("v2"), 2, 0),
            ("pre-2000", Some("v9"), 1, 0),
        ]
    );
}
