//! `make bench`: cold start, warm latency, serve-mode throughput, memory,
//! artefact size and failure latency of meshhook-health, each next to a
//! floor (`examples/floor.rs`, the smallest `lambda_http` function) measured
//! in the same run. Prints a table and writes `BENCHMARKS.md` and
//! `docs/benchmarks.svg`. It reports; it never fails on a target.
//!
//! Everything runs on loopback: a throwaway Postgres with password (SCRAM)
//! logins as in production, the Supabase stand-in of the tests, and a Lambda
//! Runtime API stand-in written here (the 2018-06-01 API: `/next`,
//! `/response`, `/error`), which timestamps what the function does.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

const COLD_STARTS: usize = 20;
const WARM_INVOCATIONS: usize = 5_000;
const MEMORY_INVOCATIONS: usize = 10_000;
const FAILURE_INVOCATIONS: usize = 20;

/// What the Runtime API stand-in saw: when each invocation was handed out
/// and when its answer came back.
#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    handed: HashMap<String, Instant>,
}

struct RuntimeApi {
    address: String,
    events: Arc<Mutex<VecDeque<(String, String)>>>,
    seen: Arc<Mutex<Seen>>,
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Instant, String)>>,
    sequence: Mutex<u64>,
}

impl RuntimeApi {
    async fn start() -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let events: Arc<Mutex<VecDeque<(String, String)>>> = Arc::default();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let notify = Arc::new(tokio::sync::Notify::new());
        {
            let (events, seen, notify) = (events.clone(), seen.clone(), notify.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let (events, seen, tx, notify) =
                        (events.clone(), seen.clone(), tx.clone(), notify.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let (events, seen, tx, notify) =
                                (events.clone(), seen.clone(), tx.clone(), notify.clone());
                            async move {
                                Ok::<_, Infallible>(handle(request, events, seen, tx, notify).await)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        }
        // Wake pollers when events are queued.
        NOTIFY.set(notify).ok();
        RuntimeApi {
            address,
            events,
            seen,
            answers: tokio::sync::Mutex::new(rx),
            sequence: Mutex::new(0),
        }
    }

    fn reset(&self) {
        *self.seen.lock().unwrap() = Seen::default();
        self.events.lock().unwrap().clear();
    }

    fn queue(&self, event: &str, n: usize) {
        let mut events = self.events.lock().unwrap();
        let mut sequence = self.sequence.lock().unwrap();
        for _ in 0..n {
            *sequence += 1;
            events.push_back((format!("inv-{sequence}"), event.to_owned()));
        }
        drop(events);
        if let Some(notify) = NOTIFY.get() {
            notify.notify_waiters();
        }
    }

    /// The next `n` answers: (invocation id, arrival, kind).
    async fn answers(&self, n: usize, limit: Duration) -> Vec<(String, Instant, String)> {
        let mut rx = self.answers.lock().await;
        let mut out = Vec::with_capacity(n);
        let _ = tokio::time::timeout(limit, async {
            while out.len() < n {
                match rx.recv().await {
                    Some(a) => out.push(a),
                    None => break,
                }
            }
        })
        .await;
        out
    }

    /// Handler time of each answered invocation: answer − hand-out.
    fn handler_times(&self, answers: &[(String, Instant, String)]) -> Vec<Duration> {
        let seen = self.seen.lock().unwrap();
        answers
            .iter()
            .filter_map(|(id, at, _)| seen.handed.get(id).map(|h| at.duration_since(*h)))
            .collect()
    }
}

static NOTIFY: std::sync::OnceLock<Arc<tokio::sync::Notify>> = std::sync::OnceLock::new();

async fn handle(
    request: Request<hyper::body::Incoming>,
    events: Arc<Mutex<VecDeque<(String, String)>>>,
    seen: Arc<Mutex<Seen>>,
    tx: mpsc::UnboundedSender<(String, Instant, String)>,
    notify: Arc<tokio::sync::Notify>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        seen.lock()
            .unwrap()
            .first_next
            .get_or_insert_with(Instant::now);
        loop {
            let waiter = notify.notified();
            let next = events.lock().unwrap().pop_front();
            if let Some((id, event)) = next {
                seen.lock()
                    .unwrap()
                    .handed
                    .insert(id.clone(), Instant::now());
                return Response::builder()
                    .header("lambda-runtime-aws-request-id", id)
                    .header("lambda-runtime-deadline-ms", "99999999999999")
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:eu-west-1:123456789012:function:bench",
                    )
                    .body(Full::new(Bytes::from(event)))
                    .unwrap();
            }
            waiter.await;
        }
    }
    let at = Instant::now();
    let mut parts = path.trim_start_matches('/').split('/');
    let id = parts.nth(3).unwrap_or("").to_owned();
    let kind = if path.ends_with("/response") {
        "response"
    } else {
        "error"
    };
    let _ = request.into_body().collect().await;
    let _ = tx.send((id, at, kind.to_owned()));
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

fn lambda_env(api: &RuntimeApi, extra: &HashMap<String, String>) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("AWS_LAMBDA_RUNTIME_API", api.address.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.clone());
    env
}

fn spawn(binary: &Path, env: &HashMap<String, String>) -> Child {
    Command::new(binary)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()))
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Cold {
    init: Vec<Duration>,
    first_answer: Vec<Duration>,
}

async fn cold_starts(
    api: &RuntimeApi,
    binary: &Path,
    env: &HashMap<String, String>,
    event: &str,
) -> Cold {
    let mut cold = Cold {
        init: Vec::new(),
        first_answer: Vec::new(),
    };
    for _ in 0..COLD_STARTS {
        api.reset();
        api.queue(event, 1);
        let started = Instant::now();
        let child = spawn(binary, &lambda_env(api, env));
        let answers = api.answers(1, Duration::from_secs(10)).await;
        kill(child);
        let seen = api.seen.lock().unwrap();
        if let (Some(next), Some((_, at, kind))) = (seen.first_next, answers.first()) {
            assert_eq!(kind, "response", "cold start answered with an error");
            cold.init.push(next.duration_since(started));
            cold.first_answer.push(at.duration_since(started));
        }
    }
    cold.init.sort();
    cold.first_answer.sort();
    cold
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Warm {
    times: Vec<Duration>,
    rss_1k: u64,
    rss_end: u64,
    hwm_end: u64,
}

async fn warm(
    api: &RuntimeApi,
    binary: &Path,
    env: &HashMap<String, String>,
    event: &str,
    n: usize,
) -> Warm {
    api.reset();
    let child = spawn(binary, &lambda_env(api, env));
    let pid = child.id();
    // Warm up, then measure.
    api.queue(event, 100);
    api.answers(100, Duration::from_secs(30)).await;
    let mut times = Vec::with_capacity(n);
    let mut rss_1k = 0;
    let mut done = 0;
    while done < n {
        let batch = 500.min(n - done);
        api.queue(event, batch);
        let answers = api.answers(batch, Duration::from_secs(60)).await;
        times.extend(api.handler_times(&answers));
        done += batch;
        if done == 1_000 {
            rss_1k = rss_kib(pid, "VmRSS:");
        }
    }
    let rss_end = rss_kib(pid, "VmRSS:");
    let hwm_end = rss_kib(pid, "VmHWM:");
    kill(child);
    times.sort();
    Warm {
        times,
        rss_1k,
        rss_end,
        hwm_end,
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// `wrk` against `serve` mode: (requests/s, p99 ms).
fn wrk(url: &str) -> Option<(f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t2", "-c50", "-d8s", "--latency", url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_owned())
        .and_then(|v| {
            if let Some(us) = v.strip_suffix("us") {
                us.parse::<f64>().ok().map(|x| x / 1000.0)
            } else if let Some(ms) = v.strip_suffix("ms") {
                ms.parse().ok()
            } else {
                v.strip_suffix('s')
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(|x| x * 1000.0)
            }
        })?;
    Some((rps, p99))
}

fn serve_mode(binary: &Path, env: &HashMap<String, String>, ttl: &str) -> Option<(f64, f64)> {
    let port = support::postgres::free_port();
    let mut env = env.clone();
    env.insert("HEALTH_CACHE_TTL_MS".into(), ttl.into());
    env.insert("HEALTH_LISTEN".into(), format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG".into(), "warn".into());
    let child = Command::new(binary)
        .env_clear()
        .envs(&env)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = wrk(&format!("http://127.0.0.1:{port}/health"));
    kill(child);
    result
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Size of `path` zipped (deflate), as a Lambda package would be.
fn zipped_size(path: &Path) -> Option<u64> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))",
        ])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

/// A CDF of warm handler times, health against floor, as SVG.
fn chart(
    health: &[Duration],
    floor: &[Duration],
    cold_health: &[Duration],
    cold_floor: &[Duration],
) -> String {
    let (w, h, pad) = (760.0, 300.0, 50.0);
    let x_max = ms(percentile(health, 0.999))
        .max(ms(percentile(floor, 0.999)))
        .max(0.1)
        * 1.1;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="12">"#,
        h * 2.0 + 40.0
    );
    let _ = write!(
        svg,
        r#"<text x="{pad}" y="20" font-size="14">Warm handler time, CDF ({WARM_INVOCATIONS} invocations each)</text>"#
    );
    let plot = |svg: &mut String, data: &[Duration], colour: &str, y0: f64, x_max: f64| {
        let mut points = String::new();
        let step = (data.len() / 400).max(1);
        let last = data.len().saturating_sub(1);
        for (i, d) in data
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == last)
        {
            let x = pad + (ms(*d) / x_max).min(1.0) * (w - 2.0 * pad);
            let y = y0 + (h - pad) - ((i + 1) as f64 / data.len() as f64) * (h - 2.0 * pad);
            let _ = write!(points, "{x:.1},{y:.1} ");
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>"#
        );
    };
    let axes = |svg: &mut String, y0: f64, x_max: f64, unit: &str| {
        let _ = write!(
            svg,
            r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{}" x2="{pad}" y2="{}" stroke="black"/>"#,
            y0 + h - pad,
            w - pad,
            y0 + h - pad,
            y0 + pad,
            y0 + h - pad
        );
        for i in 0..=4 {
            let v = x_max * i as f64 / 4.0;
            let x = pad + (w - 2.0 * pad) * i as f64 / 4.0;
            let _ = write!(
                svg,
                r#"<text x="{x}" y="{}" text-anchor="middle">{v:.2} {unit}</text>"#,
                y0 + h - pad + 16.0
            );
        }
    };
    axes(&mut svg, 10.0, x_max, "ms");
    plot(&mut svg, floor, "#888888", 10.0, x_max);
    plot(&mut svg, health, "#1f6feb", 10.0, x_max);
    let _ = write!(
        svg,
        r##"<text x="{}" y="60" fill="#1f6feb">meshhook-health</text><text x="{}" y="76" fill="#888888">floor (lambda_http, constant body)</text>"##,
        w - 260.0,
        w - 260.0
    );
    let y1 = h + 30.0;
    let cold_max = ms(percentile(cold_health, 1.0))
        .max(ms(percentile(cold_floor, 1.0)))
        .max(1.0)
        * 1.1;
    let _ = write!(
        svg,
        r#"<text x="{pad}" y="{}" font-size="14">Cold start: exec to first answer, CDF ({COLD_STARTS} starts each)</text>"#,
        y1 + 10.0
    );
    axes(&mut svg, y1, cold_max, "ms");
    plot(&mut svg, cold_floor, "#888888", y1, cold_max);
    plot(&mut svg, cold_health, "#1f6feb", y1, cold_max);
    svg.push_str("</svg>\n");
    svg
}

/// The database-backed checks of one evaluation, measured on their own
/// (no Supabase): `make bench`'s queue, pipelining and throughput rows.
struct QueueBench {
    /// Warm handler times with 1,000,000 messages queued.
    million: Vec<Duration>,
    /// `SELECT count(*)` over that queue, median of a few runs.
    count_star: Duration,
    /// One `SELECT 1` round trip through the delay proxy, median.
    round_trip: Duration,
    /// Warm handler times through the delay proxy.
    delayed: Vec<Duration>,
    /// Serve mode, cache off: evaluations/s (database + workers + queue).
    serve_evaluations: Option<f64>,
    /// The same with database + workers only.
    serve_without_queue: Option<f64>,
    /// `pgbench -M simple` `SELECT 1` on one connection: transactions/s.
    pgbench_tps: Option<f64>,
}

/// One-way delay of the delay proxy: a 5 ms round trip.
const ONE_WAY: Duration = Duration::from_micros(2_500);

async fn queue_bench(
    pg: &support::Postgres,
    api: &RuntimeApi,
    binary: &Path,
    base_env: &HashMap<String, String>,
    event: &str,
) -> QueueBench {
    // Two databases: a small queue for pipelining and throughput, a
    // million-message queue for the cost of the queue check.
    let small = pg.create_database().await;
    let big = pg.create_database().await;
    for db in [&small, &big] {
        pg.execute(db, meshhook_health::heartbeat::MIGRATION).await;
        pg.execute(db, support::pgmq::install_sql()).await;
        // The least-privilege grants docs/OPERATIONS.md gives.
        pg.execute(
            db,
            "SELECT pgmq.create('workflow_jobs'); SELECT pgmq.create('workflow_jobs_dlq'); \
             INSERT INTO monitoring.worker_heartbeats (worker_id) VALUES ('bench-worker'); \
             GRANT USAGE ON SCHEMA monitoring TO app; GRANT SELECT ON monitoring.worker_heartbeats TO app; \
             GRANT USAGE ON SCHEMA pgmq TO app; \
             GRANT SELECT ON pgmq.q_workflow_jobs, pgmq.q_workflow_jobs_dlq TO app",
        )
        .await;
    }
    pg.execute(
        &small,
        "SELECT pgmq.send('workflow_jobs', '{\"run_id\":\"r\"}'::jsonb) FROM generate_series(1, 20)",
    )
    .await;
    let url = |port: u16, db: &str| {
        format!("postgres://app:app-password@127.0.0.1:{port}/{db}?sslmode=disable")
    };
    let env_for = |port: u16, db: &str| {
        let mut env = base_env.clone();
        env.insert("HEALTH_COMPONENTS".into(), "database,workers,queue".into());
        env.insert("DATABASE_URL".into(), url(port, db));
        env
    };

    eprintln!("bench: queue check with 1,000,000 messages queued");
    for _ in 0..10 {
        pg.execute(
            &big,
            "SELECT pgmq.send_batch('workflow_jobs', array(SELECT '{\"run_id\":\"r\"}'::jsonb FROM generate_series(1, 100000)))",
        )
        .await;
    }
    let mut counts = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        pg.value(&big, "SELECT count(*) FROM pgmq.q_workflow_jobs")
            .await;
        counts.push(started.elapsed());
    }
    counts.sort();
    let million = warm(api, binary, &env_for(pg.port(), &big), event, 2_000)
        .await
        .times;

    eprintln!("bench: pipelining through a 5 ms round trip");
    let proxy = support::latency::Latency::start(pg.port(), ONE_WAY);
    let (client, connection) =
        tokio_postgres::connect(&url(proxy.port(), &small), tokio_postgres::NoTls)
            .await
            .unwrap();
    let task = tokio::spawn(connection);
    let mut trips = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        client.simple_query("SELECT 1").await.unwrap();
        trips.push(started.elapsed());
    }
    drop(client);
    let _ = task.await;
    trips.sort();
    let delayed = warm(api, binary, &env_for(proxy.port(), &small), event, 500)
        .await
        .times;

    eprintln!("bench: serve-mode evaluations/s against pgbench on one connection");
    let serve_evaluations =
        serve_mode(binary, &env_for(pg.port(), &small), "0").map(|(rps, _)| rps);
    let mut without_queue = env_for(pg.port(), &small);
    without_queue.insert("HEALTH_COMPONENTS".into(), "database,workers".into());
    let serve_without_queue = serve_mode(binary, &without_queue, "0").map(|(rps, _)| rps);
    let pgbench_tps = pgbench(pg.port(), &small);

    QueueBench {
        million,
        count_star: percentile(&counts, 0.5),
        round_trip: percentile(&trips, 0.5),
        delayed,
        serve_evaluations,
        serve_without_queue,
        pgbench_tps,
    }
}

/// `pgbench -M simple` running `SELECT 1` on one connection for 8 s
/// (as long as wrk runs): transactions per second.
fn pgbench(port: u16, db: &str) -> Option<f64> {
    let script = std::env::temp_dir().join(format!("meshhook-bench-{}.sql", std::process::id()));
    std::fs::write(&script, "SELECT 1;\n").ok()?;
    let out = Command::new(support::postgres::program("pgbench"))
        .args([
            "-n",
            "-M",
            "simple",
            "-c",
            "1",
            "-j",
            "1",
            "-T",
            "8",
            "-h",
            "127.0.0.1",
            "-U",
            "app",
        ])
        .arg("-p")
        .arg(port.to_string())
        .arg("-f")
        .arg(&script)
        .arg(db)
        .env("PGPASSWORD", "app-password")
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&script);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; anything else (`cargo test
    // --all-targets`) only checks that this compiles.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/health.rs: run it with `make bench`");
        return;
    }
    let release = target_dir().join("release");
    // The binary as `cargo build --release --bin meshhook-health` (and so
    // cargo-lambda) makes it, set aside by `make bench` before cargo bench
    // rebuilt target/release/meshhook-health with dev-dependency features.
    let health_bin = target_dir().join("bench/meshhook-health");
    let floor_bin = release.join("examples/floor");
    for bin in [&health_bin, &floor_bin] {
        assert!(
            bin.is_file(),
            "{} missing: run `make bench`, which builds it",
            bin.display()
        );
    }

    eprintln!("bench: starting Postgres (SCRAM logins), the Supabase stand-in and the Runtime API stand-in");
    let pg = support::Postgres::dedicated_with_passwords().await;
    pg.execute("postgres", meshhook_health::heartbeat::MIGRATION)
        .await;
    pg.execute(
        "postgres",
        "GRANT USAGE ON SCHEMA monitoring TO app; GRANT SELECT ON monitoring.worker_heartbeats TO app; \
         INSERT INTO monitoring.worker_heartbeats (worker_id) VALUES ('bench-worker')",
    )
    .await;
    let supabase = support::Supabase::start().await;
    let api = RuntimeApi::start().await;
    let event = std::fs::read_to_string(format!(
        "{}/events/http-api-default-stage.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let health_env: HashMap<String, String> = [
        (
            "DATABASE_URL",
            format!(
                "postgres://app:app-password@127.0.0.1:{}/postgres?sslmode=disable",
                pg.port()
            ),
        ),
        ("SUPABASE_URL", supabase.url()),
        ("SUPABASE_ANON_KEY", support::supabase::ANON_KEY.to_owned()),
        ("HEALTH_CACHE_TTL_MS", "0".to_owned()),
        ("MESHHOOK_VERSION", "bench".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let no_env = HashMap::new();

    eprintln!("bench: cold starts ({COLD_STARTS} each)");
    let cold_floor = cold_starts(&api, &floor_bin, &no_env, &event).await;
    let cold_health = cold_starts(&api, &health_bin, &health_env, &event).await;

    eprintln!(
        "bench: warm invocations ({WARM_INVOCATIONS} each; memory over {MEMORY_INVOCATIONS})"
    );
    let warm_floor = warm(&api, &floor_bin, &no_env, &event, WARM_INVOCATIONS).await;
    let warm_health = warm(&api, &health_bin, &health_env, &event, MEMORY_INVOCATIONS).await;

    eprintln!("bench: failure latency");
    let mut frozen_env = health_env.clone();
    frozen_env.insert("HEALTH_COMPONENTS".into(), "database,workers".into());
    let frozen_pg = support::Postgres::dedicated();
    frozen_env.insert("DATABASE_URL".into(), frozen_pg.url("postgres"));
    api.reset();
    let child = spawn(&health_bin, &lambda_env(&api, &frozen_env));
    api.queue(&event, 5);
    api.answers(5, Duration::from_secs(10)).await;
    frozen_pg.freeze();
    api.queue(&event, FAILURE_INVOCATIONS);
    let answers = api
        .answers(FAILURE_INVOCATIONS, Duration::from_secs(30))
        .await;
    let mut frozen_times = api.handler_times(&answers);
    frozen_pg.thaw();
    kill(child);
    frozen_times.sort();

    let hanging = support::net::RawPeer::start(support::net::Behaviour::Silent).await;
    let mut hang_env = health_env.clone();
    hang_env.insert("SUPABASE_URL".into(), hanging.url());
    api.reset();
    let child = spawn(&health_bin, &lambda_env(&api, &hang_env));
    api.queue(&event, FAILURE_INVOCATIONS);
    let answers = api
        .answers(FAILURE_INVOCATIONS, Duration::from_secs(30))
        .await;
    let mut hang_times = api.handler_times(&answers);
    kill(child);
    hang_times.sort();

    eprintln!("bench: serve mode under wrk (cache on, then off)");
    let serve_cached = serve_mode(&health_bin, &health_env, "1000");
    let serve_uncached = serve_mode(&health_bin, &health_env, "0");

    let queue = queue_bench(&pg, &api, &health_bin, &health_env, &event).await;

    let binary_size = file_size(&health_bin);
    let zip_size = zipped_size(&health_bin);
    let floor_size = file_size(&floor_bin);

    // The report.
    let p = |v: &[Duration], q: f64| ms(percentile(v, q));
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut row = |what: &str, health: String, floor: String, target: String| {
        rows.push((what.to_owned(), health, floor, target));
    };
    let verdict = |ok: bool| if ok { "holds" } else { "MISSED" };
    let (ci, cf) = (p(&cold_health.init, 0.5), p(&cold_floor.init, 0.5));
    row(
        "cold start: exec → first /next (Init), median",
        format!("{ci:.2} ms"),
        format!("{cf:.2} ms"),
        format!("≤ floor + 3 ms: {}", verdict(ci <= cf + 3.0)),
    );
    let (ca, cfa) = (
        p(&cold_health.first_answer, 0.5),
        p(&cold_floor.first_answer, 0.5),
    );
    row(
        "cold start: exec → first answer, median",
        format!("{ca:.2} ms"),
        format!("{cfa:.2} ms"),
        format!("≤ floor + 10 ms: {}", verdict(ca <= cfa + 10.0)),
    );
    let (w50, f50) = (p(&warm_health.times, 0.5), p(&warm_floor.times, 0.5));
    row(
        "warm handler time p50",
        format!("{w50:.3} ms"),
        format!("{f50:.3} ms"),
        format!("≤ floor + 1 ms: {}", verdict(w50 <= f50 + 1.0)),
    );
    let (w99, f99) = (p(&warm_health.times, 0.99), p(&warm_floor.times, 0.99));
    row(
        "warm handler time p99",
        format!("{w99:.3} ms"),
        format!("{f99:.3} ms"),
        format!("≤ floor p99 + 3 ms: {}", verdict(w99 <= f99 + 3.0)),
    );
    let hwm = warm_health.hwm_end as f64 / 1024.0;
    row(
        &format!("peak RSS after {MEMORY_INVOCATIONS} warm invocations"),
        format!("{hwm:.1} MiB"),
        format!("{:.1} MiB", warm_floor.hwm_end as f64 / 1024.0),
        format!("< 20 MiB: {}", verdict(hwm < 20.0)),
    );
    let growth = warm_health.rss_end as i64 - warm_health.rss_1k as i64;
    row(
        "RSS growth, invocation 1,000 → 10,000",
        format!("{growth} KiB"),
        "—".into(),
        format!("none: {}", verdict(growth <= 256)),
    );
    let timeout = 150.0;
    row(
        "answer with the database frozen (max)",
        format!("{:.1} ms", p(&frozen_times, 1.0)),
        "—".into(),
        format!(
            "≤ 150 + 10 ms: {}",
            verdict(!frozen_times.is_empty() && p(&frozen_times, 1.0) <= timeout + 10.0)
        ),
    );
    row(
        "answer with Supabase never answering (max)",
        format!("{:.1} ms", p(&hang_times, 1.0)),
        "—".into(),
        format!(
            "≤ 150 + 10 ms: {}",
            verdict(!hang_times.is_empty() && p(&hang_times, 1.0) <= timeout + 10.0)
        ),
    );
    let serve = |r: Option<(f64, f64)>| {
        r.map_or("wrk missing".to_owned(), |(rps, p99)| {
            format!("{rps:.0} req/s, p99 {p99:.2} ms")
        })
    };
    row(
        "serve mode, 50 connections, cache 1 s",
        serve(serve_cached),
        "—".into(),
        "reported".into(),
    );
    row(
        "serve mode, 50 connections, cache off",
        serve(serve_uncached),
        "—".into(),
        "reported".into(),
    );
    let (q50, q99) = (p(&queue.million, 0.5), p(&queue.million, 0.99));
    row(
        &format!(
            "queue check, 1,000,000 messages queued (database + workers + queue), warm p50 / p99; `count(*)` takes {:.1} ms",
            ms(queue.count_star)
        ),
        format!("{q50:.2} / {q99:.2} ms"),
        "—".into(),
        format!("p99 ≤ 10 ms: {}", verdict(q99 <= 10.0)),
    );
    let (trip, d50) = (ms(queue.round_trip), p(&queue.delayed, 0.5));
    row(
        &format!(
            "warm answer with a {:.1} ms round trip to Postgres (delay proxy; database + workers + queue), p50",
            trip
        ),
        format!("{d50:.2} ms"),
        "—".into(),
        format!("≤ one round trip + 2 ms: {}", verdict(d50 <= trip + 2.0)),
    );
    let ratio = |evaluations: Option<f64>| match (evaluations, queue.pgbench_tps) {
        (Some(evaluations), Some(tps)) if tps > 0.0 => Some((evaluations, tps, evaluations / tps)),
        _ => None,
    };
    let shown = |r: Option<(f64, f64, f64)>| {
        r.map_or("wrk or pgbench missing".to_owned(), |(e, t, r)| {
            format!("{e:.0} / {t:.0} = {r:.2}")
        })
    };
    let with_queue = ratio(queue.serve_evaluations);
    row(
        "serve mode, cache off, database + workers + queue: evaluations/s ÷ pgbench `SELECT 1` tps on one connection",
        shown(with_queue),
        "—".into(),
        format!(
            "≥ 0.5 (aim): {}",
            verdict(with_queue.is_some_and(|(_, _, r)| r >= 0.5))
        ),
    );
    row(
        "the same, database + workers only",
        shown(ratio(queue.serve_without_queue)),
        "—".into(),
        "reported".into(),
    );
    let mib = |b: Option<u64>| {
        b.map_or("—".to_owned(), |b| {
            format!("{:.2} MiB", b as f64 / 1_048_576.0)
        })
    };
    row(
        "binary (x86_64 here, stripped) / zipped",
        format!("{} / {}", mib(binary_size), mib(zip_size)),
        mib(floor_size),
        format!(
            "< 8 MiB: {}",
            verdict(binary_size.is_some_and(|b| b < 8 * 1_048_576))
        ),
    );

    let mut table =
        String::from("| measure | meshhook-health | floor | target |\n|---|---|---|---|\n");
    for (what, health, floor, target) in &rows {
        let _ = writeln!(table, "| {what} | {health} | {floor} | {target} |");
    }
    println!("\n{table}");

    let svg = chart(
        &warm_health.times,
        &warm_floor.times,
        &cold_health.first_answer,
        &cold_floor.first_answer,
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(root.join("docs/benchmarks.svg"), svg).unwrap();
    let report = format!(
        "# Benchmarks\n\n\
         Written by `make bench` ({date}). Machine: {machine}. Everything on loopback: \
         Postgres with SCRAM logins, the Supabase stand-in, a Lambda Runtime API stand-in \
         (`benches/health.rs`); all three checks enabled, cache off unless said, \
         `HEALTH_TIMEOUT_MS=150`. The floor is `examples/floor.rs`, the smallest `lambda_http` \
         function, measured in the same run. Handler time is what the Runtime API sees: from \
         handing out an event to receiving its answer.\n\n{table}\n\
         ![warm and cold latency distributions](docs/benchmarks.svg)\n\n\
         Cold starts: {COLD_STARTS} fresh processes each; warm: {WARM_INVOCATIONS} invocations each \
         (meshhook-health: {MEMORY_INVOCATIONS}, for memory); failures: {FAILURE_INVOCATIONS} \
         invocations each. Serve mode: `wrk -t2 -c50 -d8s`.\n\n\
         Re-run: `make bench` (a few minutes on 2 cores).\n",
        date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        machine = machine(),
    );
    let notes_marker = "\n## Notes\n";
    let previous = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap_or_default();
    let notes = previous
        .find(notes_marker)
        .map(|i| &previous[i..])
        .unwrap_or("");
    std::fs::write(root.join("BENCHMARKS.md"), format!("{report}{notes}")).unwrap();
    eprintln!("bench: wrote BENCHMARKS.md and docs/benchmarks.svg");
}
