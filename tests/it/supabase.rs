//! The `supabase` component against a stand-in that answers like a project
//! created in 2026: a publishable key with the default services reads
//! healthy (the Data API root refuses it; PostgREST's own answer and
//! Realtime's WebSocket handshake do not), and Supabase's own statuses read
//! as what they mean.

use crate::support::supabase::{fixture, json, Supabase, ANON_KEY};
use crate::support::{verbose, Stack};
use http::StatusCode;
use serde_json::Value;
use wiremock::ResponseTemplate;

/// The verbose body of a fresh app built from `stack`.
async fn body_of(stack: &Stack) -> (StatusCode, Value) {
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    (answer.status, body)
}

#[tokio::test]
async fn a_publishable_key_with_the_default_services_reads_healthy_on_a_2026_project() {
    let stack = Stack::new().await;
    // The stand-in refuses the Data API root to this key, as hosted
    // projects do since spring 2026.
    let root = crate::support::http_client()
        .get(format!("{}/rest/v1/", stack.supabase.url()))
        .header("apikey", ANON_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 403);

    let (status, body) = body_of(&stack).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["checks"]["supabase"]["services"],
        serde_json::json!({"auth": "healthy", "rest": "healthy", "realtime": "healthy"}),
        "{body}"
    );
    let probe = stack
        .supabase
        .requests_to("/rest/v1/meshhook_health_probe")
        .await;
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].url.query(), Some("select=*&limit=0"));
    assert_eq!(
        stack.supabase.requests_to("/rest/v1/").await.len(),
        1,
        "the root was asked by this test alone, not by the probe"
    );
    assert!(stack
        .supabase
        .requests_to("/realtime/v1/api/ping")
        .await
        .is_empty());
    let handshake = &stack.supabase.requests_to("/realtime/v1/websocket").await[0];
    assert_eq!(handshake.headers["upgrade"], "websocket");
    assert!(handshake
        .url
        .query_pairs()
        .any(|(k, v)| k == "vsn" && v == "1.0.0"));
}

#[tokio::test]
async fn each_service_answer_has_its_verdict() {
    let wrong_accept = ResponseTemplate::new(101)
        .insert_header("upgrade", "websocket")
        .insert_header("connection", "Upgrade")
        .insert_header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    // (what, route, its answer, the service's status, the HTTP status and
    // the component's reason when it is not healthy). Realtime is critical
    // in every case, so that its failure shows in the HTTP status.
    let cases = [
        (
            "PostgREST before 12 answers a missing table with 42P01",
            "/rest/v1/meshhook_health_probe",
            json(404, fixture("rest_legacy_missing_table_404.json")),
            "rest",
            "healthy",
            None,
        ),
        (
            "PostgREST without its database",
            "/rest/v1/meshhook_health_probe",
            json(503, fixture("rest_schema_cache_503.json")),
            "rest",
            "unhealthy",
            Some((StatusCode::INTERNAL_SERVER_ERROR, "bad_status")),
        ),
        (
            "a 101 without the accept our key demands",
            "/realtime/v1/websocket",
            wrong_accept,
            "realtime",
            "unhealthy",
            Some((StatusCode::INTERNAL_SERVER_ERROR, "bad_response")),
        ),
        (
            "a plain page instead of an upgrade",
            "/realtime/v1/websocket",
            json(200, fixture("realtime_ping.json")),
            "realtime",
            "unhealthy",
            Some((StatusCode::INTERNAL_SERVER_ERROR, "bad_status")),
        ),
    ];
    for (what, route, answer, service, expected, failed) in cases {
        let mut stack = Stack::new().await;
        stack.set("SUPABASE_CRITICAL_SERVICES", "auth,rest,realtime");
        stack.supabase.answer(route, answer).await;
        let (status, body) = body_of(&stack).await;
        let services = &body["checks"]["supabase"]["services"];
        assert_eq!(services[service], expected, "{what}: {body}");
        if let Some((http, reason)) = failed {
            assert_eq!(status, http, "{what}: {body}");
            assert_eq!(
                body["checks"]["supabase"]["reason"], reason,
                "{what}: {body}"
            );
            assert_eq!(
                services["auth"], "healthy",
                "{what}: only {service} failed: {body}"
            );
        }
    }
}

/// Every gateway route answers `status`; the component's reason.
async fn every_route_answers(status: u16) -> (StatusCode, Value) {
    let stack = Stack::new().await;
    for route in [
        "/auth/v1/health",
        "/rest/v1/meshhook_health_probe",
        "/realtime/v1/websocket",
    ] {
        stack
            .supabase
            .answer(route, json(status, r#"{"message":"restricted"}"#.into()))
            .await;
    }
    body_of(&stack).await
}

#[tokio::test]
async fn a_paused_project_reads_paused_and_an_over_quota_one_over_quota() {
    for (status, reason) in [(540, "paused"), (402, "over_quota"), (544, "timeout")] {
        let (http_status, body) = every_route_answers(status).await;
        assert_eq!(
            http_status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{status}: {body}"
        );
        assert_eq!(
            body["checks"]["supabase"]["reason"], reason,
            "{status}: {body}"
        );
    }
}

#[tokio::test]
async fn the_management_api_says_paused_and_over_quota_too() {
    for (status, reason) in [(540, "paused"), (402, "over_quota")] {
        let mut stack = Stack::new().await;
        let api_url = stack.supabase.url();
        stack
            .set(
                "SUPABASE_ACCESS_TOKEN",
                crate::support::supabase::ACCESS_TOKEN,
            )
            .set(
                "SUPABASE_PROJECT_REF",
                crate::support::supabase::PROJECT_REF,
            )
            .set("SUPABASE_API_URL", &api_url)
            .set("SUPABASE_SERVICES", "auth,rest");
        stack
            .supabase
            .management_answer(ResponseTemplate::new(status))
            .await;
        let (_, body) = body_of(&stack).await;
        assert_eq!(
            body["checks"]["supabase"]["reason"], reason,
            "{status}: {body}"
        );
    }
}

#[tokio::test]
async fn a_key_the_gateway_refuses_reads_auth() {
    let mut stack = Stack::new().await;
    stack.set("SUPABASE_ANON_KEY", "sb_publishable_not_this_project");
    let (status, body) = body_of(&stack).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["checks"]["supabase"]["reason"], "auth", "{body}");
    for service in ["auth", "rest", "realtime"] {
        assert_eq!(
            body["checks"]["supabase"]["services"][service], "unhealthy",
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_secret_or_service_role_key_is_refused_at_start_up_without_echoing_it() {
    use base64::Engine;
    let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let service_role = format!(
        "{}.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
        part(r#"{"alg":"HS256","typ":"JWT"}"#),
        part(
            r#"{"iss":"supabase","ref":"abcdefghijklmnopqrst","role":"service_role","iat":1700000000}"#
        )
    );
    let supabase = Supabase::start().await;
    for key in [
        "sb_secret_k3Yv9m2Qx7pL0wTzR4aB_1c2d3e4".to_owned(),
        service_role,
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
            .arg("check")
            .env_clear()
            .env("HEALTH_COMPONENTS", "supabase")
            .env("SUPABASE_URL", supabase.url())
            .env("SUPABASE_ANON_KEY", &key)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "a configuration error");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(printed.contains("SUPABASE_ANON_KEY"), "{printed}");
        assert!(!printed.contains(&key), "the key was echoed: {printed}");
        // Nor a recognisable part of it.
        assert!(!printed.contains(&key[key.len() - 12..]), "{printed}");
    }
    assert!(
        supabase
            .server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "nothing was asked with a secret key"
    );
}
