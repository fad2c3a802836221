//! The deployable artefact, run: the arm64 `bootstrap` that `make package`
//! zips, under qemu-user, against the Runtime API stand-in, a real Postgres
//! and the Supabase stand-in. It answers an HTTP API v2 GET with 200, a HEAD
//! with 200 and no body, and a scheduled event with the public JSON.
//!
//! Ignored by `make test` (it needs the cross-built artefact);
//! `make verify-package` builds the zip and runs it with
//! `MESHHOOK_BOOTSTRAP` (the unzipped binary) and `MESHHOOK_RUNNER` (the
//! emulator command, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`).

// Part of the shared helpers: the rest serve the other tests.
#[allow(dead_code)]
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::runtime_api::RuntimeApi;
use support::{Running, Stack};

fn event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
#[ignore = "needs the arm64 artefact: make verify-package"]
async fn the_packaged_bootstrap_answers_get_head_and_scheduled_events() {
    let bootstrap =
        std::env::var("MESHHOOK_BOOTSTRAP").expect("MESHHOOK_BOOTSTRAP names the bootstrap");
    let runner = std::env::var("MESHHOOK_RUNNER").unwrap_or_default();
    let stack = Stack::new().await;
    let api = RuntimeApi::start(vec![
        event("http-api-default-stage.json"),
        event("http-api-head.json"),
        event("scheduled.json"),
    ])
    .await;
    let mut words = runner.split_whitespace();
    let mut command = match words.next() {
        Some(emulator) => {
            let mut c = Command::new(emulator);
            c.args(words).arg(&bootstrap);
            c
        }
        None => Command::new(&bootstrap),
    };
    let _function = Running(
        command
            .env_clear()
            .envs(api.function_env(&stack.env))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the packaged bootstrap"),
    );
    // Emulated, the first answer includes the process start under qemu.
    let results = api.results(3, Duration::from_secs(60)).await;
    assert_eq!(results.len(), 3, "{results:?}");
    let json = |i: usize| -> Value {
        assert_eq!(results[i].0, "response", "{results:?}");
        serde_json::from_str(&results[i].1).unwrap()
    };
    let get = json(0);
    assert_eq!(get["statusCode"], 200, "{get}");
    let body: Value = serde_json::from_str(get["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["version"], "1.4.2");

    let head = json(1);
    assert_eq!(head["statusCode"], 200, "{head}");
    assert!(
        head["body"].as_str().unwrap_or("").is_empty(),
        "HEAD has no body: {head}"
    );

    let scheduled = json(2);
    assert_eq!(scheduled["status"], "healthy", "{scheduled}");
    assert!(scheduled["details"]["database"].is_string());
}
