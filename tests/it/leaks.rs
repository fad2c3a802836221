//! No leak per timed-out evaluation. It counts the process's file
//! descriptors and tasks, so it runs alone: the test re-runs itself in a
//! fresh process of this binary, where no other test opens anything.

use std::time::Duration;

use crate::support::wait::{eventually, until};
use crate::support::Stack;

/// Tasks alive on this test's runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Set in the child process that runs the measurement alone.
const ALONE: &str = "MESHHOOK_HEALTH_TEST_ALONE";

#[test]
fn a_thousand_timed_out_evaluations_leak_nothing() {
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "leaks::a_thousand_timed_out_evaluations_leak_nothing",
                "--test-threads",
                "1",
                "--nocapture",
            ])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "the measurement ran: {text}");
        return;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(measure());
}

async fn measure() {
    let mut stack = Stack::dedicated().await;
    stack
        .set("HEALTH_COMPONENTS", "database,workers")
        .set("HEALTH_TIMEOUT_MS", "10")
        .set("HEALTH_CACHE_TTL_MS", "0");
    let app = stack.app();
    let (addr, _server) = crate::support::spawn_serve(app.clone()).await;
    let client = crate::support::http_client();
    let url = format!("http://{addr}/health");
    // Healthy first: with a 10 ms deadline, a busy machine may need a few
    // tries before the first connection is in place.
    let healthy = || {
        eventually("healthy", Duration::from_secs(20), async || {
            match client.get(&url).send().await.unwrap().status() {
                http::StatusCode::OK => Ok(()),
                other => Err(other),
            }
        })
    };
    healthy().await;
    let fds_before = crate::support::open_fds();
    let tasks_before = alive_tasks();

    stack.pg().freeze();
    for _ in 0..1000 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 500);
        let _ = response.bytes().await;
    }
    assert!(app.evaluator.database().unwrap().open_connections() <= 1);
    stack.pg().thaw();
    // Healthy again (once the thawed server has worked through the queue of
    // abandoned connection attempts), with a fresh pooled connection in place
    // of the discarded one: the same resources as before the faults.
    healthy().await;
    let _ = until(Duration::from_secs(5), async || {
        let now = (crate::support::open_fds(), alive_tasks());
        (now == (fds_before, tasks_before)).then_some(()).ok_or(now)
    })
    .await;
    assert_eq!(
        crate::support::open_fds(),
        fds_before,
        "file descriptors leaked"
    );
    assert_eq!(alive_tasks(), tasks_before, "tasks leaked");
    let _ = until(Duration::from_secs(10), async || {
        match stack.pg().connections_of_health().await {
            n if n > 1 => Err(n),
            n => Ok(n),
        }
    })
    .await;
    assert_eq!(
        stack.pg().connections_of_health().await,
        1,
        "connections leaked"
    );
}
