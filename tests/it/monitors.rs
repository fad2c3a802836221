//! Real monitoring clients that nobody here wrote, against `serve` mode:
//! Prometheus blackbox_exporter with the modules in
//! `docs/monitors/blackbox.yml`, and monitoring-plugins' `check_http` with
//! the command line of `docs/monitors/nagios.cfg` — the very files the docs
//! show, so the docs cannot drift from what is tested.
//!
//! Both are Debian packages (`prometheus-blackbox-exporter`,
//! `monitoring-plugins-basic`) that `scripts/provision.sh` installs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::postgres::free_port;
use crate::support::{installed, Running, Stack};

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/monitors");

/// A blackbox_exporter on a free loopback port with the shipped modules.
struct Blackbox {
    port: u16,
    _process: Running,
}

impl Blackbox {
    fn start() -> Blackbox {
        let port = free_port();
        let process = crate::support::daemon(
            &[
                "prometheus-blackbox-exporter",
                "/usr/bin/prometheus-blackbox-exporter",
            ],
            &[
                format!("--config.file={DOCS}/blackbox.yml"),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
        );
        crate::support::wait_for_port(port);
        Blackbox {
            port,
            _process: process,
        }
    }

    /// `probe_success` of one probe, and how long the probe took.
    async fn probe(&self, module: &str, app: SocketAddr) -> (bool, Duration) {
        let url = format!(
            "http://127.0.0.1:{}/probe?module={module}&target=http://{app}/health",
            self.port
        );
        let text = crate::support::http_client()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let metric = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        };
        (
            metric("probe_success") == 1.0,
            Duration::from_secs_f64(metric("probe_duration_seconds")),
        )
    }

    /// Success of the lenient, strict and HEAD modules.
    async fn verdicts(&self, app: SocketAddr) -> [bool; 3] {
        let mut out = [false; 3];
        for (i, module) in [
            "meshhook_health",
            "meshhook_health_strict",
            "meshhook_health_head",
        ]
        .into_iter()
        .enumerate()
        {
            let (success, took) = self.probe(module, app).await;
            assert!(
                took < Duration::from_secs(5),
                "{module} took {took:?}, more than its timeout"
            );
            out[i] = success;
        }
        out
    }
}

/// The `command_line` of `check_meshhook_health` in `docs/monitors/nagios.cfg`,
/// with Nagios' macros filled in for plain HTTP on `app`.
fn check_http_command(app: SocketAddr) -> String {
    let config = std::fs::read_to_string(format!("{DOCS}/nagios.cfg")).unwrap();
    let line = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("command_line"))
        .expect("nagios.cfg defines a command_line")
        .trim();
    let plugins = Path::new(&installed(&[
        "/usr/lib/nagios/plugins/check_http",
        "/usr/lib/monitoring-plugins/check_http",
    ]))
    .parent()
    .unwrap()
    .display()
    .to_string();
    line.replace("$USER1$", &plugins)
        .replace("$HOSTADDRESS$", &app.ip().to_string())
        .replace("$ARG1$", &app.port().to_string())
}

/// check_http's exit code (0 OK, 1 WARNING, 2 CRITICAL) and first line.
/// (Run without blocking: the server under test shares this runtime.)
async fn check_http(app: SocketAddr) -> (i32, String) {
    let started = Instant::now();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(check_http_command(app))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "check_http hung"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        text.lines().next().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn real_monitors_see_healthy_degraded_down_and_back_up() {
    let stack = Stack::dedicated().await;
    let (app, _server) = crate::support::spawn_serve(stack.app()).await;
    let blackbox = Blackbox::start();

    // Healthy: every module up, check_http OK.
    assert_eq!(blackbox.verdicts(app).await, [true, true, true], "healthy");
    let (code, line) = check_http(app).await;
    eprintln!("healthy: check_http {line}");
    assert_eq!(code, 0, "healthy: {line}");
    assert!(line.starts_with("HTTP OK"), "{line}");

    // Degraded (a stale worker): up for the lenient modules and check_http,
    // down for the strict module.
    stack
        .sql("INSERT INTO monitoring.worker_heartbeats (worker_id, last_seen_at) VALUES ('w-stale', now() - interval '120 seconds')")
        .await;
    assert_eq!(
        blackbox.verdicts(app).await,
        [true, false, true],
        "degraded"
    );
    let (code, line) = check_http(app).await;
    eprintln!("degraded: check_http {line}");
    assert_eq!(code, 0, "degraded: {line}");

    // Database stopped: down everywhere, within the probes' timeouts.
    stack.pg().stop();
    assert_eq!(
        blackbox.verdicts(app).await,
        [false, false, false],
        "stopped"
    );
    let (code, line) = check_http(app).await;
    eprintln!("stopped: check_http {line}");
    assert_eq!(code, 2, "stopped: {line}");
    assert!(line.starts_with("HTTP CRITICAL"), "{line}");

    // Database back: up again on the next probe.
    stack.pg().start();
    stack
        .sql("DELETE FROM monitoring.worker_heartbeats WHERE worker_id = 'w-stale'")
        .await;
    assert_eq!(
        blackbox.verdicts(app).await,
        [true, true, true],
        "restarted"
    );
    let (code, line) = check_http(app).await;
    eprintln!("restarted: check_http {line}");
    assert_eq!(code, 0, "restarted: {line}");
}

#[test]
fn the_docs_show_the_files_the_tests_use() {
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    for file in ["blackbox.yml", "nagios.cfg"] {
        let text = std::fs::read_to_string(format!("{DOCS}/{file}")).unwrap();
        assert!(
            api.contains(&format!("docs/monitors/{file}"))
                || api.contains(&format!("monitors/{file}")),
            "docs/API.md does not point at {file}"
        );
        let command = text.lines().find(|l| l.contains("check_http -H"));
        if let Some(command) = command {
            assert!(
                api.contains(command.trim().trim_start_matches("command_line").trim()),
                "docs/API.md does not show nagios.cfg's command line"
            );
        }
    }
}

/// The HTTPS service line sends SNI (API Gateway refuses a handshake
/// without it), with options check_http really takes: against a closed
/// port it is CRITICAL (2), not a usage error (UNKNOWN, 3).
#[test]
fn the_nagios_https_service_sends_sni() {
    let config = std::fs::read_to_string(format!("{DOCS}/nagios.cfg")).unwrap();
    let args = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("check_command"))
        .and_then(|l| l.trim().strip_prefix("check_meshhook_health!"))
        .expect("nagios.cfg's service runs check_meshhook_health");
    let options: Vec<&str> = args.split_whitespace().collect();
    assert!(options.contains(&"-S"), "{args}");
    assert!(options.contains(&"--sni"), "-S without --sni: {args}");
    let port = free_port();
    let check_http = installed(&[
        "/usr/lib/nagios/plugins/check_http",
        "/usr/lib/monitoring-plugins/check_http",
    ]);
    let out = Command::new(check_http)
        .args([
            "-H",
            "localhost",
            "-p",
            &port.to_string(),
            "-u",
            "/health",
            "-t",
            "5",
        ])
        .args(&options[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
