//! Realtime asked as supabase-js asks it: one socket kept per process and a
//! Phoenix heartbeat per evaluation, against a stand-in that answers
//! heartbeats as Realtime does (vsn 1.0.0 objects) or is told to stay
//! silent, answer `error`, send garbage, close idle sockets or drop them.

use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};

use crate::support::supabase::{Heartbeats, RealtimeStandIn};
use crate::support::wait::eventually;
use crate::support::{verbose, Stack, SLACK};

/// A stack whose answers are never cached, so each request evaluates.
async fn stack(timeout_ms: &str) -> Stack {
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_CACHE_TTL_MS", "0")
        .set("HEALTH_TIMEOUT_MS", timeout_ms);
    stack
}

/// Realtime's verdict in one verbose answer: (HTTP status, the supabase
/// component's status and reason, realtime's status).
async fn realtime_of(app: &meshhook_health::App) -> (StatusCode, Value, Value, Value) {
    let answer = verbose(app).await;
    let body = answer.json();
    let supabase = &body["checks"]["supabase"];
    (
        answer.status,
        supabase["status"].clone(),
        supabase["reason"].clone(),
        supabase["services"]["realtime"].clone(),
    )
}

/// Waits until Realtime has received exactly one close frame, a normal
/// closure (1000).
async fn one_normal_close(realtime: &RealtimeStandIn) {
    eventually(
        "one close frame, 1000",
        Duration::from_secs(10),
        async || match realtime.closes.lock().unwrap().as_slice() {
            [1000] => Ok(()),
            other => Err(format!("close frames: {other:?}")),
        },
    )
    .await;
}

/// Waits until the socket opened ahead of use (at start) is open.
async fn opened_ahead(stack: &Stack) {
    eventually(
        "the socket opened at start",
        Duration::from_secs(10),
        async || match stack.supabase.realtime.opened() {
            1 => Ok(()),
            n => Err(format!("{n} sockets opened")),
        },
    )
    .await;
}

#[tokio::test]
async fn one_socket_is_opened_at_start_and_each_evaluation_is_one_heartbeat_on_it() {
    let stack = stack("2000").await;
    let app = stack.app();
    opened_ahead(&stack).await;
    for _ in 0..3 {
        let (status, component, _, realtime) = realtime_of(&app).await;
        assert_eq!(
            (status, component, realtime),
            (StatusCode::OK, json!("healthy"), json!("healthy"))
        );
    }
    assert_eq!(stack.supabase.realtime.opened(), 1, "one socket, kept");
    assert_eq!(stack.supabase.realtime.heartbeats_seen(), 3);
    let upgrade = &stack.supabase.requests_to("/realtime/v1/websocket").await;
    assert_eq!(upgrade.len(), 1);
    let query: Vec<(String, String)> = upgrade[0].url.query_pairs().into_owned().collect();
    assert!(query.contains(&("vsn".into(), "1.0.0".into())), "{query:?}");
    assert!(query.iter().any(|(k, _)| k == "apikey"), "{query:?}");
}

#[tokio::test]
async fn a_realtime_that_upgrades_and_then_answers_nothing_is_its_timeout_and_only_degrades() {
    let stack = stack("600").await;
    let app = stack.app();
    opened_ahead(&stack).await;
    assert_eq!(realtime_of(&app).await.0, StatusCode::OK);
    stack.supabase.realtime.heartbeats(Heartbeats::Silent);
    for _ in 0..2 {
        let answer = verbose(&app).await;
        assert!(
            answer.elapsed < stack.timeout() + SLACK,
            "took {:?}",
            answer.elapsed
        );
        let body = answer.json();
        assert_eq!(answer.status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "degraded", "{body}");
        let supabase = &body["checks"]["supabase"];
        assert_eq!(
            (
                &supabase["status"],
                &supabase["reason"],
                &supabase["services"]["realtime"]
            ),
            (&json!("degraded"), &json!("timeout"), &json!("unhealthy")),
            "{body}"
        );
        assert_eq!(supabase["services"]["auth"], "healthy", "{body}");
    }
    // Answering again: the unanswered socket is not trusted, a new one is.
    stack.supabase.realtime.heartbeats(Heartbeats::Answer);
    assert_eq!(realtime_of(&app).await.3, json!("healthy"));
}

#[tokio::test]
async fn an_error_reply_garbage_or_a_dropped_connection_each_has_its_reason() {
    let cases = [
        (Heartbeats::Error, "bad_status"),
        (Heartbeats::Garbage, "bad_response"),
        (Heartbeats::Drop, "unreachable"),
    ];
    for (behaviour, reason) in cases {
        let mut stack = stack("2000").await;
        // Critical, so its reason is the component's and the answer's code.
        stack.set("SUPABASE_CRITICAL_SERVICES", "auth,rest,realtime");
        let app = stack.app();
        opened_ahead(&stack).await;
        stack.supabase.realtime.heartbeats(behaviour);
        for _ in 0..2 {
            let (status, component, why, realtime) = realtime_of(&app).await;
            assert_eq!(
                (status, component, why, realtime),
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!("unhealthy"),
                    json!(reason),
                    json!("unhealthy")
                ),
                "{behaviour:?}"
            );
        }
        stack.supabase.realtime.heartbeats(Heartbeats::Answer);
        assert_eq!(realtime_of(&app).await.0, StatusCode::OK, "{behaviour:?}");
    }
}

#[tokio::test]
async fn a_socket_the_server_closed_or_dropped_while_idle_is_replaced_without_one_unhealthy_answer()
{
    let stack = stack("2000").await;
    let realtime = &stack.supabase.realtime;
    realtime.close_idle_after(Duration::from_millis(150));
    let app = stack.app();
    opened_ahead(&stack).await;
    for round in 1..=3 {
        // Longer than the server keeps a silent socket: it closes it
        // (a close frame) before the evaluation comes.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (status, _, _, service) = realtime_of(&app).await;
        assert_eq!(
            (status, service),
            (StatusCode::OK, json!("healthy")),
            "round {round}"
        );
        assert_eq!(realtime.opened(), round + 1, "round {round}: replaced");
    }
    // Realtime restarts: every socket dropped, no close frame.
    realtime.close_idle_after(Duration::from_secs(3600));
    assert_eq!(realtime_of(&app).await.0, StatusCode::OK);
    let before = realtime.opened();
    realtime.drop_open_sockets();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..2 {
        let (status, _, _, service) = realtime_of(&app).await;
        assert_eq!((status, service), (StatusCode::OK, json!("healthy")));
    }
    assert_eq!(realtime.opened(), before + 1, "replaced once, then kept");
}

#[tokio::test]
async fn serve_mode_keeps_an_idle_socket_alive_and_closes_it_on_shutdown() {
    let mut stack = stack("2000").await;
    stack.set("SUPABASE_REALTIME_HEARTBEAT_SECS", "1");
    let realtime = stack.supabase.realtime.clone();
    // Realtime closes a socket that sent nothing for 2.5 s.
    realtime.close_idle_after(Duration::from_millis(2500));
    let (server, url) = crate::support::serve_process(&stack.env);
    opened_ahead(&stack).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        realtime.heartbeats_seen() >= 3,
        "kept alive: {}",
        realtime.heartbeats_seen()
    );
    let answer = crate::support::http_client()
        .get(format!("{url}?verbose=1"))
        .bearer_auth(crate::support::DETAILS_TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(
        body["checks"]["supabase"]["services"]["realtime"], "healthy",
        "{body}"
    );
    assert_eq!(
        realtime.opened(),
        1,
        "never closed by the server, never reopened"
    );
    server.signal(libc::SIGTERM);
    one_normal_close(&realtime).await;
}

#[tokio::test]
async fn check_closes_its_socket_before_it_exits() {
    let stack = stack("2000").await;
    let env = stack.env.clone();
    // Off the runtime's thread: the stand-in answers on it meanwhile.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
            .env_clear()
            .envs(&env)
            .arg("check")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stack.supabase.realtime.heartbeats_seen(), 1);
    one_normal_close(&stack.supabase.realtime).await;
}

#[tokio::test]
async fn a_lambda_container_thawed_after_realtime_dropped_its_socket_answers_healthy() {
    use crate::support::runtime_api::{event, RuntimeApi};
    let stack = stack("2000").await;
    let api = RuntimeApi::start(Vec::new()).await;
    let function = api.spawn_function(&stack.env);
    let realtime = &stack.supabase.realtime;
    let mut statuses = Vec::new();
    for round in 0..2 {
        if round == 1 {
            // Frozen between invocations, as Lambda does; meanwhile
            // Realtime drops the socket (a deploy, an idle timeout).
            function.signal(libc::SIGSTOP);
            realtime.drop_open_sockets();
            tokio::time::sleep(Duration::from_millis(300)).await;
            function.signal(libc::SIGCONT);
        }
        api.queue(&event("scheduler.json"), 1);
        let results = api.results(1, Duration::from_secs(20)).await;
        let body: Value = serde_json::from_str(&results[0].1).unwrap();
        statuses.push(body["details"]["supabase"].clone());
    }
    assert_eq!(statuses, [json!("healthy"), json!("healthy")]);
    assert_eq!(realtime.opened(), 2, "the dead socket replaced once");
    assert_eq!(realtime.heartbeats_seen(), 2);
}
