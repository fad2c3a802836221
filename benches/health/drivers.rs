//! The bench's drivers: each runs the binary under one kind of load and
//! returns raw timings (cold starts and warm invocations through the
//! Runtime API stand-in, serve mode under wrk, the database-backed checks
//! against a million-message queue, a delay line and pgbench).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{cpu_ns, cpu_ns_named, kill, ms, percentile, rss_kib, spawn};
use crate::support;
use crate::support::runtime_api::RuntimeApi;

pub const COLD_STARTS: usize = 40;
pub const WARM_INVOCATIONS: usize = 5_000;
pub const MEMORY_INVOCATIONS: usize = 10_000;
pub const FAILURE_INVOCATIONS: usize = 20;
/// How long wrk (and pgbench beside it) runs.
const WRK_SECONDS: f64 = 8.0;

/// A function's environment for the Runtime API stand-in, logging warnings
/// only (a log line per invocation would measure the terminal).
pub fn lambda_env(api: &RuntimeApi, extra: &HashMap<String, String>) -> HashMap<String, String> {
    let mut env = api.function_env(extra);
    env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
    env
}

pub struct Cold {
    pub init: Vec<Duration>,
    pub first_answer: Vec<Duration>,
}

pub async fn cold_starts(
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
        if let (Some(next), Some(answer)) = (api.first_next(), answers.first()) {
            assert_eq!(answer.kind, "response", "cold start answered with an error");
            cold.init.push(next.duration_since(started));
            cold.first_answer.push(answer.at.duration_since(started));
        }
    }
    cold.init.sort();
    cold.first_answer.sort();
    cold
}

pub struct Warm {
    pub times: Vec<Duration>,
    pub rss_1k: u64,
    pub rss_end: u64,
    pub hwm_end: u64,
    /// On-CPU time per measured answer: the process under test, the
    /// Postgres server (every process), this bench process (the Runtime
    /// API and Supabase stand-ins) and MeshHook's app (Node.js) when one
    /// runs.
    pub cpu: Cpu,
}

#[derive(Clone, Copy)]
pub struct Cpu {
    pub process: Duration,
    pub postgres: Duration,
    pub stand_ins: Duration,
    pub app: Duration,
}

impl Cpu {
    fn now(pid: u32) -> [u64; 4] {
        [
            cpu_ns(&pid.to_string()),
            cpu_ns_named("postgres"),
            cpu_ns("self"),
            cpu_ns_named("node"),
        ]
    }

    fn per_answer(before: [u64; 4], after: [u64; 4], answers: usize) -> Self {
        let each = |i: usize| {
            Duration::from_nanos(after[i].saturating_sub(before[i]) / answers.max(1) as u64)
        };
        Cpu {
            process: each(0),
            postgres: each(1),
            stand_ins: each(2),
            app: each(3),
        }
    }

    /// The mean of `runs`, field by field.
    fn mean(runs: &[Cpu]) -> Cpu {
        let n = runs.len().max(1) as u32;
        let sum = |f: fn(&Cpu) -> Duration| runs.iter().map(f).sum::<Duration>() / n;
        Cpu {
            process: sum(|c| c.process),
            postgres: sum(|c| c.postgres),
            stand_ins: sum(|c| c.stand_ins),
            app: sum(|c| c.app),
        }
    }
}

pub async fn warm(
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
    let before = Cpu::now(pid);
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
    let cpu = Cpu::per_answer(before, Cpu::now(pid), n);
    let rss_end = rss_kib(pid, "VmRSS:");
    let hwm_end = rss_kib(pid, "VmHWM:");
    kill(child);
    times.sort();
    Warm {
        times,
        rss_1k,
        rss_end,
        hwm_end,
        cpu,
    }
}

/// `wrk` against `serve` mode: (requests/s, p99 ms).
fn wrk(url: &str) -> Option<(f64, f64)> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c50",
            &format!("-d{WRK_SECONDS}s"),
            "--latency",
            url,
        ])
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

pub fn serve_mode(binary: &Path, env: &HashMap<String, String>, ttl: &str) -> Option<(f64, f64)> {
    let port = support::postgres::free_port();
    let mut env = env.clone();
    env.insert("HEALTH_CACHE_TTL_MS".into(), ttl.into());
    env.insert("HEALTH_LISTEN".into(), format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG".into(), "warn".into());
    let child = spawn_serve(binary, &env, port);
    let result = wrk(&format!("http://127.0.0.1:{port}/health"));
    kill(child);
    result
}

/// Warm `/metrics` scrapes: `serve` with the metrics token and a cache
/// longer than the run, so every scrape reads the cached evaluation; one
/// keep-alive connection and Prometheus's `Accept`, as a scraper does.
/// Round trips as the client sees them, sorted, and the body's size.
pub async fn metrics_scrapes(
    binary: &Path,
    env: &HashMap<String, String>,
) -> (Vec<Duration>, usize) {
    const TOKEN: &str = "bench-metrics-token";
    let port = support::postgres::free_port();
    let mut env = env.clone();
    env.insert("HEALTH_METRICS_TOKEN".into(), TOKEN.into());
    env.insert("HEALTH_CACHE_TTL_MS".into(), "3600000".into());
    env.insert("HEALTH_LISTEN".into(), format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG".into(), "warn".into());
    let child = spawn_serve(binary, &env, port);
    let client = support::http_client();
    let accept =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut times = Vec::with_capacity(METRICS_SCRAPES);
    let mut size = 0;
    for i in 0..METRICS_SCRAPES + 100 {
        let started = Instant::now();
        let response = client
            .get(&url)
            .bearer_auth(TOKEN)
            .header("accept", accept)
            .send()
            .await;
        let body = match response {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => break,
        };
        // The first hundred warm the connection and the cache.
        if i >= 100 {
            times.push(started.elapsed());
        }
        size = body.len();
    }
    kill(child);
    times.sort();
    (times, size)
}

/// Scrapes timed by [`metrics_scrapes`].
pub const METRICS_SCRAPES: usize = 5_000;

/// `binary serve` with `env`, once it listens on `port` (10 s at most).
fn spawn_serve(binary: &Path, env: &HashMap<String, String>, port: u16) -> std::process::Child {
    let child = Command::new(binary)
        .env_clear()
        .envs(env)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let _ = crate::support::wait::until_blocking(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
    });
    child
}

/// The bench's login (the `app` role, SCRAM as in production) to database
/// `db` through `port`.
fn app_url(port: u16, db: &str) -> String {
    format!("postgres://app:app-password@127.0.0.1:{port}/{db}?sslmode=disable")
}

/// `base_env` with `components` enabled, logging in through [`app_url`].
fn app_env(
    base_env: &HashMap<String, String>,
    components: &str,
    port: u16,
    db: &str,
) -> HashMap<String, String> {
    let mut env = base_env.clone();
    env.insert("HEALTH_COMPONENTS".into(), components.into());
    env.insert("DATABASE_URL".into(), app_url(port, db));
    env
}

/// The `database` component's capacity reads, measured on their own.
pub struct CapacityBench {
    /// Relations in the database the size was read on.
    pub relations: u64,
    /// One connection as a role with no grant, interleaved, sorted:
    /// `SELECT 1`; the component's warm reading (its function's call); its
    /// first evaluation's plain reads, pipelined; the function's statement
    /// sent as a statement, without the size and with it.
    pub select_one: Vec<Duration>,
    pub function_call: Vec<Duration>,
    pub plain_reads: Vec<Duration>,
    pub statement: Vec<Duration>,
    pub statement_with_size: Vec<Duration>,
    /// Warm handler times, database only, without and with
    /// `DATABASE_SIZE_LIMIT_BYTES` (read every `DATABASE_SIZE_EVERY_SECS`,
    /// the default 300 s).
    pub handler_without_limit: Vec<Duration>,
    pub handler_with_limit: Vec<Duration>,
    /// The `tenancy` component's catalog reading on the same database, as
    /// a role with no grant: nothing granted to the browser's roles (no
    /// finding), then every table granted to `anon` (one finding each).
    pub tenancy_reading: Vec<Duration>,
    pub tenancy_reading_all_exposed: Vec<Duration>,
}

/// Tables made for the size row, each with a primary key: 20,000 relations.
const CAPACITY_TABLES: usize = 10_000;

pub async fn capacity_bench(
    pg: &support::Postgres,
    api: &RuntimeApi,
    binary: &Path,
    base_env: &HashMap<String, String>,
    event: &str,
) -> CapacityBench {
    let db = pg.create_database().await;
    // In batches: one transaction holds a lock per table it creates.
    for first in (1..=CAPACITY_TABLES).step_by(500) {
        pg.execute(
            &db,
            &format!(
                "DO $$ BEGIN FOR i IN {first}..{last} LOOP \
                   EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY)', i); \
                 END LOOP; END $$",
                last = first + 499
            ),
        )
        .await;
    }
    pg.execute(&db, &format!("GRANT CONNECT ON DATABASE {db} TO app"))
        .await;
    migrated_with_a_worker(pg, &db).await;
    let relations: u64 = pg
        .value(
            &db,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        )
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (client, connection) =
        tokio_postgres::connect(&app_url(pg.port(), &db), tokio_postgres::NoTls)
            .await
            .unwrap();
    let task = tokio::spawn(connection);
    let statement = meshhook_health::checks::database::statement(false);
    let with_size = meshhook_health::checks::database::statement(true);
    let time = |sql: &str| {
        let client = &client;
        let sql = sql.to_owned();
        async move {
            let started = Instant::now();
            client.simple_query(&sql).await.unwrap();
            started.elapsed()
        }
    };
    let reads = meshhook_health::checks::database::inline_statements(false);
    let pipelined = || async {
        let started = Instant::now();
        let answers =
            futures_util::future::join_all(reads.iter().map(|sql| client.query_typed(sql, &[])))
                .await;
        assert!(answers.iter().all(Result::is_ok), "the plain reads answer");
        started.elapsed()
    };
    let (mut select_one, mut call, mut reads_inline, mut plain, mut sized) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..2_000 {
        select_one.push(time("SELECT 1").await);
        call.push(time("SELECT * FROM monitoring.database_readings_v1(false)").await);
        reads_inline.push(pipelined().await);
        plain.push(time(&statement).await);
        if i % 10 == 0 {
            sized.push(time(&with_size).await);
        }
    }
    // Supabase's roles, MeshHook's default tenant tables (missing here:
    // six findings) and `public` exposed.
    pg.execute(
        &db,
        &support::tenancy::project(support::tenancy::Privileges::NotGranted),
    )
    .await;
    let tenancy = async |client: &tokio_postgres::Client| {
        use tokio_postgres::types::Type;
        let statement = client
            .prepare_typed(
                meshhook_health::checks::tenancy::STATEMENT,
                &[Type::TEXT_ARRAY, Type::TEXT_ARRAY, Type::INT4],
            )
            .await
            .unwrap();
        let tables: Vec<String> = [
            "projects",
            "secrets",
            "workflow_definitions",
            "workflow_runs",
            "workflow_events",
            "audit_log",
        ]
        .iter()
        .map(|t| format!("public.{t}"))
        .collect();
        let schemas = vec!["public".to_owned()];
        let mut times = Vec::new();
        for _ in 0..100 {
            let started = Instant::now();
            client
                .query(
                    &statement,
                    &[&tables, &schemas, &meshhook_health::checks::tenancy::LISTED],
                )
                .await
                .unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        times
    };
    let tenancy_reading = tenancy(&client).await;
    pg.execute(&db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon")
        .await;
    let tenancy_reading_all_exposed = tenancy(&client).await;
    drop(client);
    let _ = task.await;
    for v in [
        &mut select_one,
        &mut call,
        &mut reads_inline,
        &mut plain,
        &mut sized,
    ] {
        v.sort();
    }
    let env = app_env(base_env, "database", pg.port(), &db);
    let handler_without_limit = warm(api, binary, &env, event, 2_000).await.times;
    let mut limited = env.clone();
    limited.insert("DATABASE_SIZE_LIMIT_BYTES".into(), "8GB".into());
    let handler_with_limit = warm(api, binary, &limited, event, 2_000).await.times;
    CapacityBench {
        relations,
        select_one,
        function_call: call,
        plain_reads: reads_inline,
        statement: plain,
        statement_with_size: sized,
        handler_without_limit,
        handler_with_limit,
        tenancy_reading,
        tenancy_reading_all_exposed,
    }
}

/// The warm answer with MeshHook's three user-facing components (`app`
/// against the Node.js re-build of MeshHook's webhook route on loopback,
/// `live_logs`, `tenancy` at its default sampling) and without them.
pub struct MeshHookComponentsBench {
    /// Warm handler times, sorted: database + supabase + workers; the same
    /// plus live_logs and tenancy; plus app too (measured alternately, in
    /// halves, so that drift of the machine hits all alike).
    pub without: Vec<Duration>,
    pub catalog_only: Vec<Duration>,
    /// The same plus `live_logs` alone, and plus `tenancy` alone.
    pub live_logs_only: Vec<Duration>,
    pub tenancy_only: Vec<Duration>,
    pub with: Vec<Duration>,
    /// The app's own answer to the `webhooks` probe's request, timed from
    /// a client on a kept connection, sorted: what `app` cannot be faster
    /// than.
    pub app_alone: Vec<Duration>,
    /// On-CPU time per answer, without and with app, live_logs and
    /// tenancy (the mean of both rounds).
    pub cpu_without: Cpu,
    pub cpu_with: Cpu,
}

pub async fn meshhook_components_bench(
    pg: &support::Postgres,
    api: &RuntimeApi,
    binary: &Path,
    base_env: &HashMap<String, String>,
    event: &str,
) -> MeshHookComponentsBench {
    use support::tenancy::{meshhook, project, Migrations, Privileges};
    let db = pg.create_database().await;
    migrated_with_a_worker(pg, &db).await;
    pg.execute(&db, &project(Privileges::GrantedByDefault))
        .await;
    pg.execute(&db, &meshhook(Migrations::All)).await;
    pg.execute(
        &db,
        &format!(
            "GRANT CONNECT ON DATABASE {db} TO app; \
             GRANT SELECT, INSERT ON public.workflow_definitions, public.workflow_runs, public.workflow_events TO app; \
             CREATE TABLE public.logs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id uuid, line text); \
             CREATE PUBLICATION supabase_realtime FOR TABLE public.logs"
        ),
    )
    .await;
    let app = support::meshhook_app::MeshHookApp::start(&app_url(pg.port(), &db));
    let without_env = app_env(base_env, "database,supabase,workers", pg.port(), &db);
    let mut with_env = app_env(
        base_env,
        "database,supabase,workers,app,live_logs,tenancy",
        pg.port(),
        &db,
    );
    with_env.insert("MESHHOOK_URL".into(), app.url());
    let catalog_env = app_env(
        base_env,
        "database,supabase,workers,live_logs,tenancy",
        pg.port(),
        &db,
    );
    let live_logs_env = app_env(
        base_env,
        "database,supabase,workers,live_logs",
        pg.port(),
        &db,
    );
    let tenancy_env = app_env(
        base_env,
        "database,supabase,workers,tenancy",
        pg.port(),
        &db,
    );
    let (mut without, mut catalog_only, mut with) = (Vec::new(), Vec::new(), Vec::new());
    let (mut live_logs_only, mut tenancy_only) = (Vec::new(), Vec::new());
    let (mut cpu_without, mut cpu_with) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let run = warm(api, binary, &without_env, event, 1_000).await;
        cpu_without.push(run.cpu);
        without.extend(run.times);
        live_logs_only.extend(warm(api, binary, &live_logs_env, event, 1_000).await.times);
        tenancy_only.extend(warm(api, binary, &tenancy_env, event, 1_000).await.times);
        catalog_only.extend(warm(api, binary, &catalog_env, event, 1_000).await.times);
        let run = warm(api, binary, &with_env, event, 1_000).await;
        cpu_with.push(run.cpu);
        with.extend(run.times);
    }
    let client = support::http_client();
    let probe = format!(
        "{}/api/hooks/meshhook-health-probe-0123456789abcdef",
        app.url()
    );
    let mut app_alone = Vec::with_capacity(1_000);
    for i in 0..1_100 {
        let started = Instant::now();
        let answer = client
            .post(&probe)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        answer.bytes().await.unwrap();
        if i >= 100 {
            app_alone.push(started.elapsed());
        }
    }
    drop(app);
    for v in [
        &mut without,
        &mut catalog_only,
        &mut live_logs_only,
        &mut tenancy_only,
        &mut with,
        &mut app_alone,
    ] {
        v.sort();
    }
    MeshHookComponentsBench {
        without,
        catalog_only,
        live_logs_only,
        tenancy_only,
        with,
        app_alone,
        cpu_without: Cpu::mean(&cpu_without),
        cpu_with: Cpu::mean(&cpu_with),
    }
}

/// Warm handler times with the `partitions` component watching a table of
/// `partitions` monthly partitions (database + partitions, no Supabase).
pub async fn partitions_bench(
    pg: &support::Postgres,
    api: &RuntimeApi,
    binary: &Path,
    base_env: &HashMap<String, String>,
    event: &str,
    partitions: usize,
) -> Vec<Duration> {
    let db = pg.create_database().await;
    let mut sql = String::from(
        "CREATE TABLE workflow_events (run_id uuid NOT NULL, ts timestamptz NOT NULL DEFAULT now()) \
         PARTITION BY RANGE (ts);",
    );
    // Ten years back, the rest ahead: the chain from now is long.
    let first = -(partitions as i64) / 2;
    for i in 0..partitions as i64 {
        let (from, to) = (first + i, first + i + 1);
        sql.push_str(&format!(
            "CREATE TABLE workflow_events_{i} PARTITION OF workflow_events FOR VALUES \
             FROM (date_trunc('month', now()) + interval '{from} months') \
             TO (date_trunc('month', now()) + interval '{to} months');"
        ));
    }
    pg.execute(&db, &sql).await;
    migrated_with_a_worker(pg, &db).await;
    pg.execute(&db, &format!("GRANT CONNECT ON DATABASE {db} TO app"))
        .await;
    let env = app_env(base_env, "database,partitions", pg.port(), &db);
    warm(api, binary, &env, event, 2_000).await.times
}

/// Warm handler times with the `runs` component over a MeshHook-shaped
/// database (`tests/support/meshhook.rs`, 12 monthly event partitions):
/// 1,000,000 finished runs with 10 events each (10,000,000 events) and
/// 1,000 runs in flight, read through `monitoring.runs_progress()` by a
/// role with only the documented grants (database + runs, no Supabase).
pub async fn runs_bench(
    pg: &support::Postgres,
    api: &RuntimeApi,
    binary: &Path,
    base_env: &HashMap<String, String>,
    event: &str,
) -> Vec<Duration> {
    let db = pg.create_database().await;
    let project = support::meshhook::PROJECT;
    let setup = format!(
        "{schema} \
         SET synchronous_commit = off; \
         INSERT INTO workflow_runs (project_id, status, started_at, finished_at) \
           SELECT '{project}', (ARRAY['succeeded', 'failed', 'canceled', 'paused'])[1 + i % 4], \
                  now() - interval '300 days' + i * interval '25 seconds', \
                  now() - interval '300 days' + i * interval '25 seconds' + interval '10 minutes' \
           FROM generate_series(1, 1000000) AS i; \
         INSERT INTO workflow_events (run_id, ts, type) \
           SELECT r.id, r.started_at + k * interval '1 minute', 'step' \
           FROM workflow_runs r, generate_series(0, 9) AS k; \
         INSERT INTO workflow_runs (project_id, status, started_at) \
           SELECT '{project}', 'running', now() - i * interval '3 seconds' \
           FROM generate_series(1, 1000) AS i; \
         INSERT INTO workflow_events (run_id, ts, type) \
           SELECT r.id, greatest(r.started_at, now() - k * interval '20 seconds'), 'step' \
           FROM workflow_runs r, generate_series(0, 4) AS k WHERE r.status = 'running'; \
         {migration} \
         GRANT CONNECT ON DATABASE {db} TO app; \
         GRANT USAGE ON SCHEMA monitoring TO app; \
         GRANT EXECUTE ON FUNCTION monitoring.runs_progress(integer, integer) TO app;",
        schema = support::meshhook::schema(10),
        migration = include_str!("../../migrations/0002_runs_progress.sql"),
    );
    pg.execute(&db, &setup).await;
    pg.execute(&db, "VACUUM ANALYZE").await;
    let env = app_env(base_env, "database,runs", pg.port(), &db);
    warm(api, binary, &env, event, 2_000).await.times
}

/// The database-backed checks of one evaluation, measured on their own
/// (no Supabase): `make bench`'s queue, pipelining and throughput rows.
pub struct QueueBench {
    /// Warm handler times with 1,000,000 messages queued.
    pub million: Vec<Duration>,
    /// `SELECT count(*)` over that queue, median of a few runs.
    pub count_star: Duration,
    /// One `SELECT 1` round trip through the delay proxy, median.
    pub round_trip: Duration,
    /// Warm handler times through the delay proxy.
    pub delayed: Vec<Duration>,
    /// Serve mode, cache off: evaluations/s (database + workers + queue).
    pub serve_evaluations: Option<f64>,
    /// The same with database + workers only.
    pub serve_without_queue: Option<f64>,
    /// `pgbench -M simple` `SELECT 1` on one connection: transactions/s.
    pub pgbench_tps: Option<f64>,
}

/// One-way delay of the delay proxy: a 5 ms round trip.
pub const ONE_WAY: Duration = Duration::from_micros(2_500);

pub async fn queue_bench(
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
        migrated_with_a_worker(pg, db).await;
        pg.execute(db, support::pgmq::install_sql()).await;
        // The least-privilege grants docs/OPERATIONS.md gives.
        pg.execute(
            db,
            "SELECT pgmq.create('workflow_jobs'); SELECT pgmq.create('workflow_jobs_dlq'); \
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
    let env_for = |port: u16, db: &str| app_env(base_env, "database,workers,queue", port, db);

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
        tokio_postgres::connect(&app_url(proxy.port(), &small), tokio_postgres::NoTls)
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
        evaluations_per_second(pg, &small, binary, &env_for(pg.port(), &small), 3).await;
    let mut without_queue = env_for(pg.port(), &small);
    without_queue.insert("HEALTH_COMPONENTS".into(), "database,workers".into());
    let serve_without_queue = evaluations_per_second(pg, &small, binary, &without_queue, 2).await;
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

/// Evaluations per second of `serve` mode under wrk with the cache off.
/// Concurrent requests share the evaluation in flight, so wrk's requests/s
/// counts answers, not evaluations: these are counted where they land, as
/// the database's committed transactions (each of the `statements` of an
/// evaluation is one), read once the server's session has ended and
/// flushed its statistics.
async fn evaluations_per_second(
    pg: &support::Postgres,
    db: &str,
    binary: &Path,
    env: &HashMap<String, String>,
    statements: u64,
) -> Option<f64> {
    let committed = || async {
        pg.value(
            db,
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .await
        .and_then(|v| v.parse::<u64>().ok())
    };
    let before = committed().await?;
    serve_mode(binary, env, "0")?;
    // The server's backend flushes its counters when it exits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = committed().await?;
    Some(after.saturating_sub(before) as f64 / statements as f64 / WRK_SECONDS)
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

/// `migrate`'s schema in database `db`, as deployed: readable by the
/// bench's role `app` (the reading functions callable), and one worker's
/// heartbeat.
pub async fn migrated_with_a_worker(pg: &support::Postgres, db: &str) {
    pg.execute(db, meshhook_health::migrate::MIGRATION).await;
    pg.execute(
        db,
        "GRANT USAGE ON SCHEMA monitoring TO app; GRANT SELECT ON monitoring.worker_heartbeats TO app; \
         INSERT INTO monitoring.worker_heartbeats (worker_id) VALUES ('bench-worker')",
    )
    .await;
}

/// Round trip of the delay lines in the round-trip rows.
pub const RTT: Duration = Duration::from_millis(10);

/// Cold starts per negotiation in the round-trip rows.
const ROUND_TRIP_COLD_STARTS: usize = 20;

/// Warm invocations in the round-trip rows.
const ROUND_TRIP_WARM: usize = 300;

/// Answers measured behind delay lines to both Postgres (TLS, SCRAM
/// logins, as a hosted project is reached) and the Supabase stand-in, on
/// the PostgreSQL major `PG_BIN` names: once with lines of [`RTT`], once
/// with lines of no delay (the same proxies), so that the difference
/// divided by the RTT counts the round trips and nothing of the local work.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RoundTrips {
    pub rtt_ms: f64,
    /// `server_version_num` of the database.
    pub server_version: u32,
    pub at_rtt: Lines,
    pub at_zero: Lines,
}

/// What one set of lines measured, in ms, each sorted.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Lines {
    /// Warm handler times, database + supabase + workers.
    pub warm_ms: Vec<f64>,
    /// Exec → first answer with `sslnegotiation=postgres` and `direct`
    /// (empty when the server refuses direct TLS).
    pub cold_postgres_ms: Vec<f64>,
    pub cold_direct_ms: Vec<f64>,
}

pub async fn round_trips(binary: &Path, event: &str) -> RoundTrips {
    let pki = support::tls::Pki::new(&["localhost"]);
    let pg = support::Postgres::dedicated_tls_with_passwords(&pki).await;
    migrated_with_a_worker(&pg, "postgres").await;
    let server_version = pg
        .value("postgres", "SHOW server_version_num")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let supabase = support::Supabase::start().await;
    let api = RuntimeApi::start(Vec::new()).await;
    let mut measured = Vec::new();
    for rtt in [RTT, Duration::ZERO] {
        eprintln!("bench: round trips through lines of {rtt:?} RTT");
        measured.push(lines(&pg, &supabase, &api, binary, event, rtt).await);
    }
    let at_zero = measured.pop().unwrap();
    let at_rtt = measured.pop().unwrap();
    RoundTrips {
        rtt_ms: ms(RTT),
        server_version,
        at_rtt,
        at_zero,
    }
}

async fn lines(
    pg: &support::Postgres,
    supabase: &support::Supabase,
    api: &RuntimeApi,
    binary: &Path,
    event: &str,
    rtt: Duration,
) -> Lines {
    let pg_line = support::latency::Latency::start_with_handshakes(pg.port(), rtt / 2);
    let supabase_line = support::latency::Latency::start_with_handshakes(supabase.port(), rtt / 2);
    let env_for = |negotiation: &str| -> HashMap<String, String> {
        [
            (
                "DATABASE_URL",
                format!(
                    "postgres://app:app-password@127.0.0.1:{}/postgres?sslmode=require&sslnegotiation={negotiation}",
                    pg_line.port()
                ),
            ),
            ("SUPABASE_URL", format!("http://127.0.0.1:{}", supabase_line.port())),
            ("SUPABASE_ANON_KEY", support::supabase::ANON_KEY.to_owned()),
            ("HEALTH_CACHE_TTL_MS", "0".to_owned()),
            ("HEALTH_TIMEOUT_MS", "2000".to_owned()),
            ("MESHHOOK_VERSION", "bench".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    };
    let sorted_ms = |v: &[Duration]| {
        let mut v: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let warm_times = warm(api, binary, &env_for("postgres"), event, ROUND_TRIP_WARM)
        .await
        .times;
    let mut cold = Vec::new();
    for negotiation in ["postgres", "direct"] {
        let env = env_for(negotiation);
        let mut firsts = Vec::new();
        for _ in 0..ROUND_TRIP_COLD_STARTS {
            api.reset();
            api.queue(event, 1);
            let started = Instant::now();
            let child = spawn(binary, &lambda_env(api, &env));
            let answers = api.answers(1, Duration::from_secs(10)).await;
            kill(child);
            // The answer's body is JSON inside the response's JSON.
            let healthy = answers
                .first()
                .is_some_and(|a| a.body.contains(r#"\"database\":\"healthy\""#));
            if let (Some(answer), true) = (answers.first(), healthy) {
                firsts.push(answer.at.duration_since(started));
            }
        }
        cold.push(sorted_ms(&firsts));
    }
    let cold_direct_ms = cold.pop().unwrap();
    let cold_postgres_ms = cold.pop().unwrap();
    Lines {
        warm_ms: sorted_ms(&warm_times),
        cold_postgres_ms,
        cold_direct_ms,
    }
}
