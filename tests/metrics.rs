//! The metrics the template's alarms watch, as the real binary prints them
//! in Lambda mode: `Unhealthy` is 1 only for an unhealthy evaluation (the
//! page), `Healthy` is 0 for a degraded one too (the optional, slower
//! `DegradedAlarm`).

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{runtime_api::RuntimeApi, Running, Stack};
use wiremock::ResponseTemplate;

const BIN: &str = env!("CARGO_BIN_EXE_meshhook-health");

fn scheduled() -> String {
    std::fs::read_to_string(format!(
        "{}/events/scheduler.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn a_degraded_evaluation_never_counts_as_unhealthy() {
    let stack = Stack::new().await;
    let api = RuntimeApi::start(vec![scheduled()]).await;
    let env = api.function_env(&stack.env);
    let mut child = Running(
        Command::new(BIN)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut bodies = Vec::new();
    let mut next = |body: String| bodies.push(body);
    let answer = |results: Vec<(String, String)>| {
        assert_eq!(results.len(), 1, "{results:?}");
        results.into_iter().next().unwrap().1
    };
    let limit = Duration::from_secs(20);
    // 1. Healthy.
    next(answer(api.results(1, limit).await));
    // 2. Realtime down: not critical, so degraded (a 200).
    stack
        .supabase
        .answer("/realtime/v1/api/ping", ResponseTemplate::new(503))
        .await;
    api.queue(&scheduled(), 1);
    next(answer(api.results(1, limit).await));
    // 3. Auth down too: critical, so unhealthy.
    stack
        .supabase
        .answer("/auth/v1/health", ResponseTemplate::new(503))
        .await;
    api.queue(&scheduled(), 1);
    next(answer(api.results(1, limit).await));
    child.0.kill().unwrap();
    let mut stdout = String::new();
    child
        .0
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    drop(child);

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
        .map(support::emf::check)
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
