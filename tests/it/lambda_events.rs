//! Every sample event in `events/` decoded and answered by the real Lambda
//! handler, plus events the function must refuse without dying.

use crate::support::runtime_api::event;
use crate::support::Stack;
use lambda_runtime::{Context, LambdaEvent};
use meshhook_health::App;
use serde_json::value::RawValue;
use serde_json::Value;

async fn invoke(app: &App, payload: &str) -> Result<Value, String> {
    let raw = RawValue::from_string(payload.to_owned()).map_err(|e| e.to_string())?;
    meshhook_health::lambda::handle(app, LambdaEvent::new(raw, Context::default()))
        .await
        .map(|out| serde_json::from_str(out.get()).unwrap())
        .map_err(|e| e.to_string())
}

/// A response header, from `headers` or `multiValueHeaders`.
fn header(response: &Value, name: &str) -> Option<String> {
    if let Some(v) = response["headers"].get(name).and_then(Value::as_str) {
        return Some(v.to_owned());
    }
    response["multiValueHeaders"]
        .get(name)
        .and_then(|v| v[0].as_str())
        .map(str::to_owned)
}

/// (file, expected status, what the body must be)
#[derive(Clone, Copy)]
enum Body {
    Public,
    Verbose,
    Empty,
    Live,
    MethodNotAllowed,
}

const EXPECTED: &[(&str, u16, Body)] = &[
    ("apigw-rest-get.json", 200, Body::Public),
    ("apigw-rest-head.json", 200, Body::Empty),
    ("apigw-rest-verbose.json", 200, Body::Verbose),
    ("http-api-default-stage.json", 200, Body::Public),
    ("http-api-named-stage.json", 200, Body::Public),
    ("http-api-head.json", 200, Body::Empty),
    ("http-api-live.json", 200, Body::Live),
    ("http-api-post.json", 405, Body::MethodNotAllowed),
    ("function-url.json", 200, Body::Public),
    ("alb.json", 200, Body::Public),
];

#[tokio::test]
async fn every_sample_event_is_answered_by_the_real_handler() {
    let stack = Stack::new().await;
    let app = stack.app();
    let mut files: Vec<String> =
        std::fs::read_dir(format!("{}/events", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    for file in &files {
        if file.starts_with("scheduled") || file.starts_with("scheduler") {
            continue;
        }
        let (_, status, body) = EXPECTED
            .iter()
            .find(|(name, ..)| name == file)
            .unwrap_or_else(|| panic!("events/{file} has no expectation in this test"));
        let response = invoke(&app, &event(file))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(response["statusCode"], *status, "{file}: {response}");
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("application/json"),
            "{file}"
        );
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("no-store"),
            "{file}"
        );
        let text = response["body"].as_str().unwrap_or("");
        match body {
            Body::Empty => assert!(text.is_empty(), "{file}: HEAD carried a body"),
            Body::Public | Body::Verbose => {
                let json: Value = serde_json::from_str(text).unwrap();
                assert_eq!(json["status"], "healthy", "{file}");
                assert_eq!(
                    json.get("checks").is_some(),
                    matches!(body, Body::Verbose),
                    "{file}"
                );
            }
            Body::Live => assert_eq!(text, r#"{"status":"healthy","version":"1.4.2"}"#),
            Body::MethodNotAllowed => {
                assert_eq!(text, r#"{"error":"method not allowed"}"#);
                assert_eq!(header(&response, "allow").as_deref(), Some("GET, HEAD"));
            }
        }
    }
}

#[tokio::test]
async fn head_answers_carry_get_status_when_unhealthy() {
    let mut stack = Stack::new().await;
    stack.set(
        "DATABASE_URL",
        "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
    );
    let app = stack.app();
    for file in ["apigw-rest-head.json", "http-api-head.json"] {
        let response = invoke(&app, &event(file)).await.unwrap();
        assert_eq!(response["statusCode"], 500, "{file}");
        assert!(response["body"].as_str().unwrap_or("").is_empty());
    }
}

/// `scheduled.json` is an EventBridge rule's event; `scheduler.json` the
/// `Input` the template's EventBridge Scheduler schedule sends.
#[tokio::test]
async fn scheduled_events_return_the_public_json_object() {
    let stack = Stack::new().await;
    let app = stack.app();
    for file in ["scheduled.json", "scheduler.json"] {
        let response = invoke(&app, &event(file)).await.unwrap();
        assert_eq!(response["status"], "healthy", "{file}");
        assert_eq!(response["version"], "1.4.2");
        assert_eq!(response["details"]["database"], "healthy");
        assert!(response.get("checks").is_none());
        assert!(response.get("statusCode").is_none());
    }
}

#[tokio::test]
async fn unknown_events_are_invocation_errors_and_the_handler_keeps_serving() {
    let stack = Stack::new().await;
    let app = stack.app();
    for payload in [
        "{}",
        "[]",
        "\"health\"",
        "42",
        "null",
        r#"{"Records":[{"eventSource":"aws:sqs","body":"x"}]}"#,
        r#"{"source":"aws.events","detail-type":"EC2 Instance State-change Notification"}"#,
        r#"{"httpMethod":"GET"}"#,
    ] {
        let error = invoke(&app, payload).await.expect_err(payload);
        assert!(error.starts_with("unsupported event"), "{payload}: {error}");
        assert!(!error.contains('\n'));
    }
    let response = invoke(&app, &event("http-api-default-stage.json"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 200);
}

#[test]
fn the_template_schedules_the_sample_scheduler_event() {
    let template =
        std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let input = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("Input: '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("the schedule's Input in template.yaml");
    let sent: Value = serde_json::from_str(input).unwrap();
    let sample: Value = serde_json::from_str(&event("scheduler.json")).unwrap();
    assert_eq!(
        sent, sample,
        "events/scheduler.json must be what the schedule sends"
    );
}
