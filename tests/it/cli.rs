//! The binary end to end: `check`, `migrate`, `heartbeat`, `serve`, Lambda
//! mode against a Runtime API stand-in, usage and configuration errors.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::postgres::free_port;
use crate::support::runtime_api::{event, RuntimeApi};
use crate::support::wait::eventually;
use crate::support::{Postgres, Running, Stack};

const BIN: &str = env!("CARGO_BIN_EXE_meshhook-health");

fn binary(env: &HashMap<String, String>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().envs(env).stdin(Stdio::null());
    cmd
}

fn run(env: &HashMap<String, String>, args: &[&str]) -> Output {
    binary(env)
        .args(args)
        .output()
        .expect("run meshhook-health")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn count(pg: &Postgres, db: &str, sql: &str) -> i64 {
    pg.value(db, sql).await.unwrap().parse().unwrap()
}

#[tokio::test]
async fn check_prints_only_the_public_body_and_exits_by_status() {
    let mut stack = Stack::new().await;
    let out = run(&stack.env, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the body on stdout: {stdout}"
    );
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(
        text(&out.stderr).contains("health evaluated"),
        "logs go to stderr"
    );

    stack.set(
        "DATABASE_URL",
        "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
    );
    let out = run(&stack.env, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "unhealthy");
}

#[tokio::test]
async fn check_verbose_prints_the_verbose_body_and_exits_by_the_public_status() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_COMPONENTS", "database,workers,live_logs");
    // live_logs is unhealthy (no publication, no table) but not critical.
    let out = run(&stack.env, &["check", "--verbose"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"]["live_logs"]["reason"], "schema_missing",
        "{body}"
    );
    assert!(body["checker_version"].is_string(), "{body}");
    let public: serde_json::Value =
        serde_json::from_slice(&run(&stack.env, &["check"]).stdout).unwrap();
    assert!(public.get("checks").is_none(), "{public}");
}

#[tokio::test]
async fn bad_configuration_exits_2_naming_the_variable_without_the_secret() {
    let stack = Stack::new().await;
    let cases: &[(&str, &str, &str)] = &[
        ("HEALTH_TIMEOUT_MS", "abc", "HEALTH_TIMEOUT_MS"),
        ("HEALTH_COMPONENTS", "database,cache", "HEALTH_COMPONENTS"),
        ("HEALTH_UNHEALTHY_STATUS", "502", "HEALTH_UNHEALTHY_STATUS"),
        (
            "DATABASE_URL",
            "postgres://u:hunter2-secret@[bad/db",
            "DATABASE_URL",
        ),
        (
            "DATABASE_URL",
            "host=db user=u password=hunter2-secret sslmode=verify-everything",
            "DATABASE_URL",
        ),
        ("SUPABASE_URL", "not a url hunter2-secret", "SUPABASE_URL"),
        (
            "WORKER_MIN_ALIVE_BY_KIND",
            "orchestrator",
            "WORKER_MIN_ALIVE_BY_KIND",
        ),
        ("SUPABASE_SERVICES", "auth,graphql", "SUPABASE_SERVICES"),
        // Direct TLS has no plaintext to fall back to: refused with prefer,
        // as libpq refuses it, wherever it is set.
        (
            "DATABASE_URL",
            "postgres://u:hunter2-secret@db/x?sslmode=prefer&sslnegotiation=direct",
            "DATABASE_URL",
        ),
        ("PGSSLNEGOTIATION", "direct", "PGSSLNEGOTIATION"),
        ("PGSSLNEGOTIATION", "sometimes", "PGSSLNEGOTIATION"),
    ];
    for (key, value, named) in cases {
        let mut env = stack.env.clone();
        env.insert((*key).into(), (*value).into());
        let out = run(&env, &["check"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(stderr.contains(named), "{key}: {stderr}");
        assert!(
            !stderr.contains("hunter2-secret"),
            "secret echoed: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let mut env = stack.env.clone();
    env.remove("DATABASE_URL");
    let out = run(&env, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("DATABASE_URL"));
}

#[tokio::test]
async fn an_opt_in_components_bad_settings_exit_2_naming_the_variable() {
    let stack = Stack::new().await;
    for (components, key, value) in [
        (
            "database,partitions",
            "PARTITIONS_TABLES",
            "events; drop table x",
        ),
        ("database,partitions", "PARTITIONS_AHEAD_SECS", "a week"),
        ("database,queue", "QUEUE_NAMES", "Jobs"),
        ("database,runs", "RUNS_TABLE", "runs; drop table x"),
        ("database,runs", "RUNS_EVENTS_TABLE", "Events"),
        ("database,runs", "RUNS_STALLED_AFTER_SECS", "5 minutes"),
        ("database,runs", "RUNS_LOOKBACK_SECS", "0"),
        ("database,runs", "RUNS_UNHEALTHY_MIN_STALLED", "none"),
    ] {
        let mut env = stack.env.clone();
        env.insert("HEALTH_COMPONENTS".into(), components.into());
        env.insert(key.into(), value.into());
        let out = run(&env, &["check"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    // `migrate` writes the table names into the runs function: it refuses
    // a bad one before touching the database.
    let mut env = stack.env.clone();
    env.insert("RUNS_EVENTS_TABLE".into(), "events\"; drop".into());
    let out = run(&env, &["migrate"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("RUNS_EVENTS_TABLE"), "{stderr}");
}

#[test]
fn usage_help_and_version() {
    let env = HashMap::new();
    let out = run(&env, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage"));
    assert!(out.stdout.is_empty());

    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["heartbeat", "--help"],
        &["migrate", "--help"],
    ] {
        let out = run(&env, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
    for args in [
        &["--version"][..],
        &["serve", "--version"],
        &["heartbeat", "--version"],
    ] {
        let out = run(&env, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
    let out = run(&env, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&env, &["heartbeat"]);
    assert_eq!(out.status.code(), Some(2), "--worker-id is required");
    assert!(text(&out.stderr).contains("--worker-id"));
}

#[tokio::test]
async fn migrate_creates_the_heartbeat_table_idempotently() {
    let pg = Postgres::shared();
    let db = pg.create_database().await;
    let env = HashMap::from([("DATABASE_URL".to_owned(), pg.url(&db))]);
    for _ in 0..2 {
        let out = run(&env, &["migrate"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let n = count(pg, &db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'monitoring' AND table_name = 'worker_heartbeats'").await;
    assert_eq!(n, 1);
}

#[tokio::test]
async fn heartbeat_once_upserts_and_periodic_deletes_its_row_on_sigterm() {
    let stack = Stack::new().await;
    let mut env = stack.env.clone();
    env.insert("MESHHOOK_VERSION".into(), "9.9.9".into());
    let out = run(
        &env,
        &["heartbeat", "--worker-id", "exec-7", "--kind", "http-exec"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let n = count(
        stack.pg(),
        &stack.db,
        "SELECT count(*) FROM monitoring.worker_heartbeats WHERE worker_id = 'exec-7' AND kind = 'http-exec' AND version = '9.9.9'",
    )
    .await;
    assert_eq!(n, 1);

    // Without MESHHOOK_VERSION the row reports no version (counted as
    // "unknown"), never the checker's own.
    let mut unversioned = stack.env.clone();
    unversioned.remove("MESHHOOK_VERSION");
    let out = run(&unversioned, &["heartbeat", "--worker-id", "exec-9"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let n = count(
        stack.pg(),
        &stack.db,
        "SELECT count(*) FROM monitoring.worker_heartbeats WHERE worker_id = 'exec-9' AND version IS NULL",
    )
    .await;
    assert_eq!(n, 1);

    let mut child = Running(
        binary(&env)
            .args(["heartbeat", "--worker-id", "exec-8", "--every", "1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let row = "SELECT count(*) FROM monitoring.worker_heartbeats WHERE worker_id = 'exec-8'";
    eventually(
        "a heartbeat row",
        Duration::from_secs(10),
        async || match count(stack.pg(), &stack.db, row).await {
            0 => Err(0),
            n => Ok(n),
        },
    )
    .await;
    child.signal(libc::SIGTERM);
    let status = child.wait();
    assert!(status.success(), "{status}");
    assert_eq!(
        count(stack.pg(), &stack.db, row).await,
        0,
        "row deleted on shutdown"
    );
}

#[tokio::test]
async fn serve_answers_get_and_head_alike_and_stops_on_sigterm() {
    let stack = Stack::new().await;
    let port = free_port();
    let mut child = Running(
        binary(&stack.env)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    crate::support::wait_for_port(port);
    let client = crate::support::http_client();
    let url = format!("http://127.0.0.1:{port}/health");
    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let get_headers = get.headers().clone();
    let body = get.text().await.unwrap();
    assert!(body.starts_with(r#"{"status":"healthy""#));

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    for name in ["content-type", "cache-control", "content-length"] {
        assert_eq!(head.headers().get(name), get_headers.get(name), "{name}");
    }
    assert!(head.bytes().await.unwrap().is_empty());

    let post = client.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let missing = client
        .get(format!("http://127.0.0.1:{port}/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    child.signal(libc::SIGTERM);
    let started = Instant::now();
    let status = child.wait();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn serve_listens_on_every_interface_at_port_when_only_port_is_set() {
    let mut stack = Stack::new().await;
    let port = free_port();
    stack.set("PORT", &port.to_string());
    let _child =
        crate::support::serve_process_from(std::path::Path::new(BIN), &stack.env, &["serve"], port);
    let listening = std::fs::read_to_string("/proc/net/tcp").unwrap();
    // 0.0.0.0:port in LISTEN state (0A), as the kernel lists it.
    let wildcard = format!("00000000:{port:04X} 00000000:0000 0A");
    assert!(listening.contains(&wildcard), "not bound to 0.0.0.0:{port}");
    let answer = crate::support::http_client()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    stack.set("PORT", "http");
    let out = run(&stack.env, &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("PORT"), "{}", text(&out.stderr));
}

/// `HEALTH_LISTEN=[::]:PORT` (what RAILWAY.md sets for private
/// networking, IPv6 in older Railway environments) answers on IPv6 and
/// IPv4 alike: the socket is dual-stack.
#[tokio::test]
async fn serve_on_the_ipv6_wildcard_answers_both_address_families() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        crate::support::skip(
            "cli::serve_on_the_ipv6_wildcard_answers_both_address_families",
            "this machine has no IPv6 loopback",
        );
        return;
    }
    let mut stack = Stack::new().await;
    let port = free_port();
    stack.set("HEALTH_LISTEN", &format!("[::]:{port}"));
    let _child =
        crate::support::serve_process_from(std::path::Path::new(BIN), &stack.env, &["serve"], port);
    for host in ["127.0.0.1", "[::1]"] {
        let answer = crate::support::http_client()
            .get(format!("http://{host}:{port}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn serve_refuses_a_bad_listen_address_with_exit_2() {
    let stack = Stack::new().await;
    let out = run(&stack.env, &["serve", "--listen", "localhost:notaport"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--listen"));
}

#[tokio::test]
async fn lambda_mode_answers_events_and_survives_unknown_ones() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_METRICS_NAMESPACE", "MeshHook/HealthTest");
    let api = RuntimeApi::start(vec![
        event("http-api-default-stage.json"),
        r#"{"not":"an event"}"#.to_owned(),
        event("apigw-rest-get.json"),
        r#"{"version":"2.0","rawPath":"/heal"#.to_owned(),
        "[1,2,3]".to_owned(),
        event("scheduled.json"),
    ])
    .await;
    let child = api.spawn_function(&stack.env);
    let results = api.results(6, Duration::from_secs(20)).await;
    let stdout = child.kill_and_read_stdout();

    // Metrics: three evaluations (two HTTP events, one scheduled; the cache
    // is off), each one EMF document per component plus the database's
    // capacity figures, `Healthy` once.
    let all: Vec<serde_json::Value> = stdout.lines().map(crate::support::emf::check).collect();
    assert_eq!(all.len(), 12, "{stdout}");
    let (documents, capacity): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|d| d.get("ComponentHealthy").is_some());
    assert_eq!(documents.len(), 9, "{stdout}");
    for doc in &capacity {
        assert_eq!(doc["Component"], "database", "{doc}");
        assert!(
            doc["DatabaseConnectionsUsedPercent"].as_f64().unwrap() > 0.0,
            "{doc}"
        );
        assert!(doc["DatabaseXidAge"].as_f64().unwrap() >= 1.0, "{doc}");
    }
    assert_eq!(
        documents
            .iter()
            .filter(|d| d.get("Healthy").is_some())
            .count(),
        3
    );
    for doc in &documents {
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(directives
            .iter()
            .all(|d| d["Namespace"] == "MeshHook/HealthTest"));
        assert_eq!(doc["ComponentHealthy"], 1);
        assert!(doc["LatencyMs"].as_f64().unwrap() >= 0.0);
    }
    let components: Vec<&str> = documents[..3]
        .iter()
        .map(|d| d["Component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["database", "supabase", "workers"]);

    assert_eq!(results.len(), 6, "{results:?}");
    let (kind, body) = &results[0];
    assert_eq!(kind, "response");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap()["statusCode"],
        200
    );
    let (kind, body) = &results[1];
    assert_eq!(kind, "error");
    assert!(body.contains("unsupported event"), "{body}");
    let (kind, body) = &results[2];
    assert_eq!(kind, "response");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap()["statusCode"],
        200
    );
    for (kind, body) in &results[3..5] {
        assert_eq!(
            kind, "error",
            "truncated JSON and arrays are invocation errors: {body}"
        );
    }
    let (kind, body) = &results[5];
    assert_eq!(kind, "response");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap()["status"],
        "healthy"
    );
}

#[tokio::test]
async fn logs_are_json_lines_per_evaluation_and_never_carry_secrets() {
    let mut stack = Stack::new().await;
    let password = "pw-distinctive-5521";
    let db_url = stack.env["DATABASE_URL"].replace("postgres@", &format!("postgres:{password}@"));
    stack
        .set("DATABASE_URL", &db_url)
        .set("HEALTH_LOG_FORMAT", "json")
        .set("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .set("SUPABASE_SERVICES", "auth,realtime,rest,storage");
    let mut failing = stack.env.clone();
    failing.insert(
        "SUPABASE_ANON_KEY".into(),
        "sb_publishable_wrong_but_secret_7731".into(),
    );
    failing.insert(
        "DATABASE_URL".into(),
        format!("postgres://postgres:{password}@127.0.0.1:1/postgres?sslmode=disable"),
    );
    for env in [&stack.env, &failing] {
        let out = run(env, &["check"]);
        let stderr = text(&out.stderr);
        let mut evaluations = 0;
        for line in stderr.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if event["message"] == "health evaluated" {
                evaluations += 1;
                assert!(event["status"].is_string());
                let checks: serde_json::Value =
                    serde_json::from_str(event["checks"].as_str().expect("checks is text"))
                        .expect("checks holds a JSON object");
                assert!(checks["database"]["status"].is_string());
                assert!(checks["database"]["latency_ms"].is_number());
            }
        }
        assert_eq!(evaluations, 1, "{stderr}");
        for secret in [
            password,
            crate::support::supabase::ANON_KEY,
            "sb_publishable_wrong_but_secret_7731",
            crate::support::DETAILS_TOKEN,
        ] {
            assert!(!stderr.contains(secret), "{secret} reached a log");
        }
    }
}

/// A directory for PATH whose `apt-get` and `sudo` only record that they
/// were called (and fail), with the marker file they write.
fn recording_installers() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = crate::support::temp_dir("installers");
    let marker = dir.path().join("installed");
    for tool in ["apt-get", "sudo"] {
        let path = dir.path().join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n",
                marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    (dir, marker)
}

/// `command` (a script that ends up serving `/health` on `port`) started
/// in a process group of its own, so that a signal reaches everything it
/// started; stdin and stderr closed (stdout as the caller set it). Returns
/// the running group and its `/health` URL.
fn serving_script(mut command: Command, port: u16) -> (Running, String) {
    use std::os::unix::process::CommandExt;
    let child = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    (Running(child), format!("http://127.0.0.1:{port}/health"))
}

/// `make run` with the caller's DATABASE_URL checks that database as it
/// is: no throwaway cluster in its place, no migrate, no demo heartbeat
/// written into it, and Supabase left out without SUPABASE_URL. It needs no
/// PostgreSQL server package then (PG_BIN names a directory without one):
/// nothing is installed.
#[tokio::test]
async fn make_run_checks_the_callers_database_as_it_is() {
    let stack = Stack::new().await;
    let port = free_port();
    let (installers, installed) = recording_installers();
    let mut command = Command::new("make");
    command
        .args(["-s", "run"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                installers.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("PG_BIN", "/nonexistent/postgresql/bin")
        .env("DATABASE_URL", &stack.env["DATABASE_URL"])
        .env("MESHHOOK_HEALTH_BIN", BIN)
        .env("HEALTH_LISTEN", format!("127.0.0.1:{port}"))
        .env("HEALTH_DETAILS_TOKEN", crate::support::DETAILS_TOKEN)
        .stdout(Stdio::piped());
    let (mut running, url) = serving_script(command, port);
    let (status, _) = crate::support::wait_for_health(&url, Duration::from_secs(30)).await;
    let bytes = crate::support::http_client()
        .get(format!("{url}?verbose=1"))
        .bearer_auth(crate::support::DETAILS_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let connected = count(
        stack.pg(),
        &stack.db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'meshhook-health'",
    )
    .await;
    let demo = count(
        stack.pg(),
        &stack.db,
        "SELECT count(*) FROM monitoring.worker_heartbeats WHERE worker_id = 'demo-worker-1'",
    )
    .await;
    running.signal_group(libc::SIGTERM);
    let _ = running.wait();
    let mut stdout = String::new();
    std::io::Read::read_to_string(running.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();

    assert_eq!(status, 200, "{body}\n{stdout}");
    assert!(
        !installed.exists(),
        "make run installed something: {}",
        std::fs::read_to_string(&installed).unwrap_or_default()
    );
    let components: Vec<&String> = body["checks"].as_object().unwrap().keys().collect();
    assert_eq!(components, ["database", "workers"], "{body}");
    assert!(
        connected >= 1,
        "the caller's database was checked\n{stdout}"
    );
    assert_eq!(demo, 0, "no demo heartbeat in the caller's database");
    assert!(
        stdout.contains("DATABASE_URL from the environment")
            && !stdout.contains("==> throwaway Postgres on"),
        "{stdout}"
    );
}

/// `make run` with its port already taken (another local server answers
/// there) stops at once, names the address and how to pick another, and
/// never prints the other server's answer as its own.
#[test]
fn make_run_with_its_port_taken_fails_at_once_and_names_it() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in other.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nother-server",
            );
        }
    });
    for (variable, value) in [
        ("HEALTH_LISTEN", format!("127.0.0.1:{port}")),
        ("PORT", port.to_string()),
    ] {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run-local.sh"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("MESHHOOK_HEALTH_BIN", BIN)
            .env(variable, &value)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{variable}: {stdout}{stderr}");
        assert!(started.elapsed() < Duration::from_secs(20), "{variable}");
        assert!(!stdout.contains("other-server"), "{variable}: {stdout}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{port}"))
                && stderr.contains("PORT=")
                && stderr.contains("HEALTH_LISTEN"),
            "{variable}: {stderr}"
        );
    }
}

/// `make run` and `make invoke` leave Supabase out unless SUPABASE_URL is
/// set, whichever database they use (the binary's own default includes it
/// and would refuse to start without its URL).
#[test]
fn make_run_and_invoke_enable_supabase_only_with_its_url() {
    let root = env!("CARGO_MANIFEST_DIR");
    let components = |env: &[(&str, &str)]| {
        let out = Command::new("bash")
            .args(["-c", "source scripts/lib.sh && default_components"])
            .current_dir(root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        text(&out.stdout).trim().to_owned()
    };
    let real = ("DATABASE_URL", "postgres://u@db.example:5432/postgres");
    assert_eq!(components(&[real]), "database,workers");
    assert_eq!(
        components(&[real, ("SUPABASE_URL", "https://x.supabase.co")]),
        "database,supabase,workers"
    );
    assert_eq!(components(&[("HEALTH_COMPONENTS", "database")]), "database");
    for script in ["scripts/invoke.sh", "scripts/run-local.sh"] {
        let body = std::fs::read_to_string(format!("{root}/{script}")).unwrap();
        // At the top level, not inside the branch for one database.
        assert!(
            body.lines()
                .any(|l| l == "HEALTH_COMPONENTS=$(default_components)"),
            "{script}: components are chosen whichever database is used"
        );
    }
}

/// `make run` with `CARGO_TARGET_DIR` set (a shared target directory) runs
/// the binary cargo built there. The script runs from a copy of the
/// repository's scripts, so that no `target/release` beside them can stand
/// in; `cargo` is a stand-in that "builds" by putting this test's binary
/// where cargo would.
#[tokio::test]
async fn make_run_finds_the_binary_under_cargo_target_dir() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::new().await;
    let root = crate::support::temp_dir("target-dir");
    let scripts = root.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for script in ["run-local.sh", "lib.sh"] {
        std::fs::copy(
            format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")),
            scripts.join(script),
        )
        .unwrap();
    }
    let tools = root.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let cargo = tools.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\nmkdir -p \"$CARGO_TARGET_DIR/release\" && cp {BIN} \"$CARGO_TARGET_DIR/release/meshhook-health\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target_dir = root.path().join("shared-target");
    let port = free_port();
    let mut command = Command::new("bash");
    command
        .arg(scripts.join("run-local.sh"))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", tools.display()))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("DATABASE_URL", &stack.env["DATABASE_URL"])
        .env("HEALTH_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null());
    let (mut running, url) = serving_script(command, port);
    let (status, body) = crate::support::wait_for_health(&url, Duration::from_secs(30)).await;
    running.signal_group(libc::SIGTERM);
    let _ = running.wait();
    assert_eq!(status, 200, "{body}");
    assert!(target_dir.join("release/meshhook-health").is_file());
    assert!(
        !root.path().join("target").exists(),
        "nothing built or looked for in ./target"
    );
}
