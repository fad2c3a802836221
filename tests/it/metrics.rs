//! The metrics the template's alarms watch, as the real binary prints them
//! in Lambda mode: `Unhealthy` is 1 only for an unhealthy evaluation (the
//! page), `Healthy` is 0 for a degraded one too (the optional, slower
//! `DegradedAlarm`).

use std::time::Duration;

use crate::support::runtime_api::{event, RuntimeApi};
use crate::support::Stack;
use serde_json::{json, Value};
use wiremock::ResponseTemplate;

#[tokio::test]
async fn a_degraded_evaluation_never_counts_as_unhealthy() {
    let stack = Stack::new().await;
    let api = RuntimeApi::start(Vec::new()).await;
    let child = api.spawn_function(&stack.env);
    // Healthy; then Realtime down (not critical: degraded, a 200); then
    // Auth down too (critical: unhealthy). One scheduled evaluation each.
    let mut bodies = Vec::new();
    for broken in [
        None,
        Some("/realtime/v1/websocket"),
        Some("/auth/v1/health"),
    ] {
        match broken {
            Some("/realtime/v1/websocket") => stack.supabase.realtime_down().await,
            Some(route) => {
                stack
                    .supabase
                    .answer(route, ResponseTemplate::new(503))
                    .await
            }
            None => {}
        }
        api.queue(&event("scheduler.json"), 1);
        let results = api.results(1, Duration::from_secs(20)).await;
        assert_eq!(results.len(), 1, "{results:?}");
        bodies.push(results[0].1.clone());
    }
    let stdout = child.kill_and_read_stdout();

    let statuses: Vec<String> = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["status"].to_string())
        .collect();
    assert_eq!(
        statuses,
        [r#""healthy""#, r#""degraded""#, r#""unhealthy""#],
        "{bodies:?}"
    );
    // One overall pair per evaluation, in the document that also carries
    // the first component; both declared in the same directive.
    let overall: Vec<(Value, Value)> = stdout
        .lines()
        .map(crate::support::emf::check)
        .filter(|d| d.get("Healthy").is_some())
        .map(|d| {
            let directive = &d["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Dimensions"], json!([[]]), "{d}");
            let names: Vec<&str> = directive["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["Healthy", "Unhealthy"], "{d}");
            (d["Healthy"].clone(), d["Unhealthy"].clone())
        })
        .collect();
    assert_eq!(
        overall,
        [
            (json!(1), json!(0)),
            (json!(0), json!(0)),
            (json!(0), json!(1))
        ],
        "{stdout}"
    );
}
