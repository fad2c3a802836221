//! Serve mode's `/metrics` as Prometheus sees it: the exposition itself
//! (names, HELP and TYPE, both formats, `promtool check metrics`, no
//! secret or error text), its token, a hundred concurrent scrapes and
//! requests costing one evaluation, a real Prometheus (Debian's package)
//! scraping `serve` every second with the documented job, and the
//! documented configuration and alert rules checked and unit-tested by
//! `promtool`.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::meshhook::{self, migrated};
use crate::support::postgres::free_port;
use crate::support::supabase::{fixture, json, ANON_KEY};
use crate::support::wait::eventually;
use crate::support::{
    http_client, installed, serve_process, spawn_serve, temp_dir, Running, Stack, DETAILS_TOKEN,
};
use meshhook_health::config::Config;
use meshhook_health::App;
use serde_json::Value;
use serde_norway::Value as Yaml;

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/monitors");
const METRICS_TOKEN: &str = "metrics-token-5b8e0c2d7a";
/// What Prometheus 2.x sends: OpenMetrics first.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Every family a MeshHook with all components and a size limit shows.
const FAMILIES: [&str; 18] = [
    "status",
    "component_status",
    "check_duration_seconds",
    "evaluations_total",
    "database_connections_used",
    "database_connections_limit",
    "database_connections_used_ratio",
    "database_xid_age",
    "database_size_bytes",
    "workers_alive",
    "workers_stale",
    "queue_ready_messages",
    "queue_oldest_ready_age_seconds",
    "queue_recent_dead_letters",
    "runs_in_flight",
    "runs_stalled",
    "runs_oldest_stalled_age_seconds",
    "partitions_covered_seconds",
];

/// A healthy stack with every component on and every figure measurable:
/// MeshHook's runs and partitioned event log (migrated), pgmq with a queue,
/// a size limit, a listed worker kind, and the metrics token.
async fn full_stack() -> Stack {
    let mut stack = Stack::new().await;
    stack.sql(&meshhook::schema(2)).await;
    stack.sql(crate::support::pgmq::install_sql()).await;
    stack.sql("SELECT pgmq.create('workflow_jobs')").await;
    stack
        .set(
            "HEALTH_COMPONENTS",
            "database,supabase,workers,queue,runs,partitions",
        )
        .set("HEALTH_METRICS_TOKEN", METRICS_TOKEN)
        .set("DATABASE_SIZE_LIMIT_BYTES", "8GB")
        .set("WORKER_MIN_ALIVE_BY_KIND", "orchestrator=1");
    migrated(&stack.env);
    stack
}

/// `GET /metrics` with `token` and `accept`: status, Content-Type, body.
async fn scrape(
    addr: std::net::SocketAddr,
    token: Option<&str>,
    accept: Option<&str>,
) -> (u16, HashMap<String, String>, String) {
    let response = crate::support::metrics_request(addr, http::Method::GET, token, accept).await;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    (status, headers, response.text().await.unwrap())
}

/// `promtool check metrics` on a classic-format body: its exit status and
/// what it complained about.
fn promtool_check_metrics(body: &str) -> (bool, String) {
    let mut child = Command::new(installed(&["/usr/bin/promtool", "promtool"]))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// The sum of a family's samples in a classic-format body.
fn sum_of(body: &str, family: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn every_figure_is_exposed_with_help_and_type_in_both_formats_and_nothing_secret() {
    let stack = full_stack().await;
    let (addr, _server) = spawn_serve(stack.app()).await;

    let (status, headers, classic) = scrape(addr, Some(METRICS_TOKEN), None).await;
    assert_eq!(status, 200, "{classic}");
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(headers["cache-control"], "no-store");
    for family in FAMILIES {
        let name = format!("meshhook_health_{family}");
        assert!(
            classic.contains(&format!("\n# HELP {name} "))
                || classic.starts_with(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{classic}"
        );
        assert!(
            classic.contains(&format!("\n# TYPE {name} ")),
            "no TYPE for {name}"
        );
        assert!(
            classic
                .lines()
                .any(|l| l.starts_with(&name) && !l.starts_with('#')),
            "no sample of {name}"
        );
    }
    for line in [
        "meshhook_health_status{status=\"healthy\"} 1",
        "meshhook_health_evaluations_total{status=\"healthy\"} 1",
        "meshhook_health_workers_alive{kind=\"orchestrator\"} 1",
        "meshhook_health_workers_alive{kind=\"other\"} 0",
        "meshhook_health_queue_ready_messages{queue=\"workflow_jobs\"} 0",
    ] {
        assert!(
            classic.lines().any(|l| l.starts_with(line)),
            "{line} missing:\n{classic}"
        );
    }
    assert!(
        classic.contains("meshhook_health_partitions_covered_seconds{table=\"workflow_events\"} ")
    );
    let (clean, said) = promtool_check_metrics(&classic);
    assert!(
        clean && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );

    let (status, headers, openmetrics) =
        scrape(addr, Some(METRICS_TOKEN), Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE meshhook_health_evaluations counter\n"));
    assert!(!classic.contains("# EOF"));

    // Something fails with error text of its own: none of it, and none of
    // the test's secrets, hosts or users, is in a scrape.
    stack.sql("SELECT pgmq.drop_queue('workflow_jobs')").await;
    stack
        .supabase
        .answer("/auth/v1/health", json(503, fixture("auth_health.json")))
        .await;
    let (_, _, failing) = scrape(addr, Some(METRICS_TOKEN), None).await;
    assert!(
        failing.contains("meshhook_health_status{status=\"unhealthy\"} 1"),
        "{failing}"
    );
    let url = reqwest::Url::parse(&stack.env["DATABASE_URL"]).unwrap();
    let mut secrets = vec![
        METRICS_TOKEN,
        DETAILS_TOKEN,
        ANON_KEY,
        url.username(),
        &stack.db,
    ];
    secrets.extend(url.password());
    secrets.extend(["127.0.0.1", "localhost", "q_workflow_jobs", "exist"]);
    let label_value = regex::Regex::new(r#"="([^"]*)""#).unwrap();
    let configured = [
        "healthy",
        "degraded",
        "unhealthy",
        "database",
        "supabase",
        "workers",
        "queue",
        "runs",
        "partitions",
        "workflow_jobs",
        "workflow_events",
        "orchestrator",
        "other",
    ];
    for text in [&classic, &openmetrics, &failing] {
        for secret in &secrets {
            assert!(!text.contains(secret), "{secret:?} in a scrape:\n{text}");
        }
        for value in label_value.captures_iter(text) {
            let value = &value[1];
            let bound = value == "+Inf" || value.parse::<f64>().is_ok();
            assert!(
                configured.contains(&value) || bound,
                "label value {value:?}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_needs_its_token_and_is_off_without_it_or_in_lambda_mode() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_METRICS_TOKEN", METRICS_TOKEN);
    let (addr, _server) = spawn_serve(stack.app()).await;
    for token in [
        None,
        Some("wrong"),
        Some(DETAILS_TOKEN),
        Some(&METRICS_TOKEN[1..]),
    ] {
        let (status, headers, body) = scrape(addr, token, None).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "unauthorized"
        );
    }
    // A refused scrape evaluated nothing: the first accepted one counts one.
    let (status, _, body) = scrape(addr, Some(METRICS_TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        sum_of(&body, "meshhook_health_evaluations_total"),
        1.0,
        "{body}"
    );
    let post = http_client()
        .post(format!("http://{addr}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    stack.unset("HEALTH_METRICS_TOKEN");
    let (addr, _off) = spawn_serve(stack.app()).await;
    let (status, _, body) = scrape(addr, Some(METRICS_TOKEN), None).await;
    assert_eq!((status, body.as_str()), (404, r#"{"error":"not found"}"#));

    stack.set("HEALTH_METRICS_TOKEN", METRICS_TOKEN);
    let mut config = Config::from_source(&stack.env).unwrap();
    config.lambda = true;
    let lambda = Arc::new(App::new(config).unwrap());
    assert!(lambda.exposition.is_none());
    let answer =
        crate::support::call(&lambda, http::Method::GET, "/metrics", Some(METRICS_TOKEN)).await;
    assert_eq!(answer.status.as_u16(), 404);
}

/// Scrapes read the evaluator as requests do: with an evaluation slowed by
/// Supabase, fifty scrapes and fifty `/health` requests at once share one
/// evaluation (its counter says so, and Supabase saw one probe).
#[tokio::test]
async fn a_hundred_concurrent_scrapes_and_requests_share_one_evaluation() {
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_METRICS_TOKEN", METRICS_TOKEN)
        .set("HEALTH_CACHE_TTL_MS", "600000")
        .set("HEALTH_TIMEOUT_MS", "5000");
    let slow = json(200, fixture("auth_health.json")).set_delay(Duration::from_millis(500));
    stack.supabase.answer("/auth/v1/health", slow).await;
    let (addr, _server) = spawn_serve(stack.app()).await;
    let client = http_client();
    let calls = (0..100).map(|i| {
        let client = client.clone();
        async move {
            let path = if i % 2 == 0 { "metrics" } else { "health" };
            let response = client
                .get(format!("http://{addr}/{path}"))
                .bearer_auth(METRICS_TOKEN)
                .send()
                .await
                .unwrap();
            (
                path,
                response.status().as_u16(),
                response.text().await.unwrap(),
            )
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (path, status, body) in &answers {
        assert_eq!(*status, 200, "{path}: {body}");
        if *path == "metrics" {
            assert_eq!(
                sum_of(body, "meshhook_health_evaluations_total"),
                1.0,
                "{body}"
            );
            assert!(body.contains("meshhook_health_status{status=\"healthy\"} 1"));
        }
    }
    assert_eq!(stack.supabase.requests_to("/auth/v1/health").await.len(), 1);
}

/// A Prometheus with the documented `meshhook-health` job (its targets,
/// token file and interval replaced), plus the same job with a wrong token,
/// and the documented rules loaded.
struct Prometheus {
    port: u16,
    _process: Running,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = temp_dir("prometheus");
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("token"), METRICS_TOKEN).unwrap();
        std::fs::write(path("wrong-token"), "not-the-token").unwrap();
        let documented: Yaml = serde_norway::from_str(
            &std::fs::read_to_string(format!("{DOCS}/prometheus.yml")).unwrap(),
        )
        .unwrap();
        let job = documented["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|j| j["job_name"] == "meshhook-health")
            .expect("the documented config has a meshhook-health job")
            .clone();
        let configured = |name: &str, token: &str| {
            let mut job = job.clone();
            job["job_name"] = name.into();
            job["scrape_interval"] = "1s".into();
            job["scrape_timeout"] = "1s".into();
            job["authorization"]["credentials_file"] = path(token).into();
            job["static_configs"][0]["targets"] =
                serde_norway::from_str(&format!("[{target}]")).unwrap();
            job
        };
        let config = serde_json::json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [format!("{DOCS}/prometheus-rules.yml")],
            "scrape_configs": [],
        });
        let mut config: Yaml = serde_norway::from_str(&config.to_string()).unwrap();
        config["scrape_configs"] = Yaml::Sequence(vec![
            configured("meshhook-health", "token"),
            configured("wrong-token", "wrong-token"),
        ]);
        std::fs::write(
            path("prometheus.yml"),
            serde_norway::to_string(&config).unwrap(),
        )
        .unwrap();
        let port = free_port();
        let process = crate::support::daemon(
            &["/usr/bin/prometheus", "prometheus"],
            &[
                format!("--config.file={}", path("prometheus.yml")),
                format!("--storage.tsdb.path={}", path("data")),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
        );
        Prometheus {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// The API's answer to `GET /api/v1/{what}`, once it gives one.
    async fn api(&self, what: &str) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/{what}", self.port);
        let response = http_client().get(url).send().await.ok()?;
        serde_json::from_str(&response.text().await.ok()?).ok()
    }

    /// The value of an instant query with one series, if it has one.
    async fn value(&self, query: &str) -> Option<f64> {
        let encoded =
            percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
        let answer = self.api(&format!("query?query={encoded}")).await?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    /// Waits (60 s at most) until `query` reads `expected`.
    async fn until(&self, query: &str, expected: f64) {
        let what = format!("{query} = {expected}");
        eventually(&what, Duration::from_secs(60), async || {
            let value = self.value(query).await;
            if value == Some(expected) {
                Ok(())
            } else {
                Err(value)
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_real_prometheus_sees_healthy_then_unhealthy_and_a_wrong_token_as_down() {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_METRICS_TOKEN", METRICS_TOKEN);
    let (_serve, url) = serve_process(&stack.env);
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches("/health")
        .to_owned();
    let prometheus = Prometheus::start(&target);

    let job = r#"job="meshhook-health""#;
    prometheus
        .until(
            &format!(r#"meshhook_health_status{{{job},status="healthy"}}"#),
            1.0,
        )
        .await;
    prometheus.until(&format!("up{{{job}}}"), 1.0).await;
    prometheus.until(r#"up{job="wrong-token"}"#, 0.0).await;
    assert_eq!(
        prometheus
            .value(r#"meshhook_health_status{job="wrong-token"}"#)
            .await,
        None
    );

    stack
        .sql("UPDATE monitoring.worker_heartbeats SET last_seen_at = now() - interval '1 hour'")
        .await;
    prometheus
        .until(
            &format!(r#"meshhook_health_status{{{job},status="unhealthy"}}"#),
            1.0,
        )
        .await;
    prometheus
        .until(
            &format!(r#"meshhook_health_status{{{job},status="healthy"}}"#),
            0.0,
        )
        .await;
    let workers = format!(
        r#"meshhook_health_component_status{{{job},component="workers",status="unhealthy"}}"#
    );
    assert_eq!(prometheus.value(&workers).await, Some(1.0));
    assert_eq!(
        prometheus
            .value(&format!(
                r#"meshhook_health_workers_alive{{{job},kind="other"}}"#
            ))
            .await,
        Some(0.0)
    );

    // The documented rules loaded and evaluate against the real series.
    let rules = prometheus
        .api("rules")
        .await
        .expect("the rules API answers");
    let loaded: Vec<&Value> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(loaded.len(), 8, "{rules}");
    for rule in loaded {
        assert_ne!(rule["health"], "err", "{rule}");
    }
}

/// `promtool check config` accepts the documented configuration (with a
/// token file where it names one, and the rules it loads); its probe job
/// goes through blackbox_exporter with a module blackbox.yml defines.
#[test]
fn the_documented_prometheus_config_is_valid() {
    let dir = temp_dir("prometheus-config");
    let token = dir.path().join("token");
    std::fs::write(&token, METRICS_TOKEN).unwrap();
    let text = std::fs::read_to_string(format!("{DOCS}/prometheus.yml")).unwrap();
    let documented = "/etc/prometheus/meshhook-health-metrics.token";
    assert!(text.contains(documented));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        text.replace(documented, &token.display().to_string()),
    )
    .unwrap();
    std::fs::copy(
        format!("{DOCS}/prometheus-rules.yml"),
        dir.path().join("prometheus-rules.yml"),
    )
    .unwrap();
    let out = Command::new(installed(&["/usr/bin/promtool", "promtool"]))
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("SUCCESS: 8 rules found"), "{said}");

    let modules = std::fs::read_to_string(format!("{DOCS}/blackbox.yml")).unwrap();
    let module = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("module: ["))
        .and_then(|m| m.strip_suffix(']'))
        .expect("the probe job names a blackbox module");
    assert!(modules.contains(&format!("\n  {module}:\n")), "{module}");
    for relabel in [
        "target_label: __param_target",
        "target_label: instance",
        "target_label: __address__",
    ] {
        assert!(text.contains(relabel), "{relabel}");
    }
}

/// The rules pass `promtool check rules` and their unit tests, and every
/// alert has a case where it fires and one where it does not.
#[test]
fn every_alert_rule_is_tested_firing_and_quiet() {
    let promtool = installed(&["/usr/bin/promtool", "promtool"]);
    for args in [
        &["check", "rules", "prometheus-rules.yml"][..],
        &["test", "rules", "prometheus-rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(DOCS)
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool {args:?}: {out:?}");
    }
    let rules: Yaml = serde_norway::from_str(
        &std::fs::read_to_string(format!("{DOCS}/prometheus-rules.yml")).unwrap(),
    )
    .unwrap();
    let tests: Yaml = serde_norway::from_str(
        &std::fs::read_to_string(format!("{DOCS}/prometheus-rules.test.yml")).unwrap(),
    )
    .unwrap();
    let cases: Vec<(&str, bool)> = tests["tests"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_sequence().unwrap())
        .map(|case| {
            let fires = !case["exp_alerts"].as_sequence().unwrap().is_empty();
            (case["alertname"].as_str().unwrap(), fires)
        })
        .collect();
    let mut pages = Vec::new();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let alert = rule["alert"].as_str().unwrap();
        for fires in [true, false] {
            assert!(
                cases.contains(&(alert, fires)),
                "{alert}: no case where it {}",
                if fires { "fires" } else { "stays quiet" }
            );
        }
        match rule["labels"]["severity"].as_str() {
            Some("page") => pages.push(alert),
            Some("warning") => {}
            other => panic!("{alert}: severity {other:?}"),
        }
    }
    assert_eq!(
        pages,
        [
            "MeshHookUnhealthy",
            "MeshHookHealthCheckerDown",
            "MeshHookTenancyBroken"
        ],
        "only an outage or a leak pages"
    );
}
