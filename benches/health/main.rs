//! `make bench`: cold start, warm latency, serve-mode throughput, memory,
//! artefact size and failure latency of meshhook-health, each next to a
//! floor (`examples/floor.rs`, the smallest `lambda_http` function) measured
//! in the same run. Prints a table and writes `BENCHMARKS.md` and
//! `docs/benchmarks.svg`. It reports; it never fails on a target.
//!
//! Everything runs on loopback: a throwaway Postgres with password (SCRAM)
//! logins as in production, and the tests' own stand-ins for Supabase and
//! the Lambda Runtime API (`tests/support`), which timestamps what the
//! function does. [`harness`] starts and measures processes, [`drivers`]
//! apply each load, [`report`] writes the results.

#[path = "../../tests/support/mod.rs"]
#[allow(unused_imports, dead_code)]
mod support;

mod drivers;
mod harness;
mod report;

use std::collections::HashMap;
use std::time::Duration;

use drivers::{
    capacity_bench, cold_starts, lambda_env, meshhook_components_bench, metrics_scrapes,
    partitions_bench, queue_bench, round_trips, runs_bench, serve_mode, warm, RoundTrips,
    COLD_STARTS, FAILURE_INVOCATIONS, MEMORY_INVOCATIONS, WARM_INVOCATIONS,
};

/// Partitions of the event log in the partitions row: ten years of months.
const PARTITIONS: usize = 120;
use harness::{file_size, kill, spawn, target_dir, zipped_size};
use report::Measurements;
use support::runtime_api::RuntimeApi;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; anything else (`cargo test
    // --all-targets`) only checks that this compiles.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/health: run it with `make bench`");
        return;
    }
    let release = target_dir().join("release");
    // The binary as `cargo build --release --bin meshhook-health` (and so
    // cargo-lambda) makes it, set aside by `make bench` before cargo bench
    // rebuilt target/release/meshhook-health with dev-dependency features.
    // BENCH_HEALTH_BIN: another build of the binary (an earlier commit's,
    // to compare before and after a change).
    let health_bin = std::env::var_os("BENCH_HEALTH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| target_dir().join("bench/meshhook-health"));
    let floor_bin = release.join("examples/floor");
    let naive_bin = release.join("examples/naive");
    let round_trips_file = target_dir().join("bench/round-trips.json");
    if std::env::var_os("BENCH_ROUND_TRIPS").is_some() {
        // `make bench` runs this first, on PostgreSQL 17 (PG_BIN), and the
        // full run below reads what it wrote.
        let event = std::fs::read_to_string(format!(
            "{}/events/http-api-default-stage.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let measured = round_trips(&health_bin, &event).await;
        let out = std::env::var_os("BENCH_ROUND_TRIPS_OUT")
            .map(std::path::PathBuf::from)
            .unwrap_or(round_trips_file);
        std::fs::write(out, serde_json::to_string(&measured).unwrap()).unwrap();
        report::print_round_trips(&measured);
        return;
    }
    for bin in [&health_bin, &floor_bin, &naive_bin] {
        assert!(
            bin.is_file(),
            "{} missing: run `make bench`, which builds it",
            bin.display()
        );
    }

    eprintln!("bench: starting Postgres (SCRAM logins), the Supabase stand-in and the Runtime API stand-in");
    let pg = support::Postgres::dedicated_with_passwords().await;
    drivers::migrated_with_a_worker(&pg, "postgres").await;
    let supabase = support::Supabase::start().await;
    let api = RuntimeApi::start(Vec::new()).await;
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
    if std::env::var_os("BENCH_PARTITIONS_ONLY").is_some() {
        // A quick look at the partitions row: nothing written.
        let times = partitions_bench(&pg, &api, &health_bin, &health_env, &event, PARTITIONS).await;
        println!(
            "partitions check, {PARTITIONS} partitions, warm p50: {:.2} ms",
            harness::ms(harness::percentile(&times, 0.5))
        );
        return;
    }
    if std::env::var_os("BENCH_COMPONENTS_ONLY").is_some() {
        // A quick look at the opt-in components' warm cost: nothing written.
        let c = meshhook_components_bench(&pg, &api, &health_bin, &health_env, &event).await;
        report::print_components(&c);
        return;
    }

    let naive_env: HashMap<String, String> = [(
        "DATABASE_URL".to_owned(),
        health_env["DATABASE_URL"].clone(),
    )]
    .into();
    let mut database_env = health_env.clone();
    database_env.insert("HEALTH_COMPONENTS".into(), "database".into());

    eprintln!("bench: cold starts ({COLD_STARTS} each)");
    let cold_floor = cold_starts(&api, &floor_bin, &no_env, &event).await;
    let cold_naive = cold_starts(&api, &naive_bin, &naive_env, &event).await;
    let cold_health = cold_starts(&api, &health_bin, &health_env, &event).await;
    let cold_database = cold_starts(&api, &health_bin, &database_env, &event).await;
    if std::env::var_os("BENCH_COLD_ONLY").is_some() {
        // A quick look while tuning start-up: no other load, no file written.
        report::print_cold(&cold_health, &cold_floor);
        report::print_cold(&cold_naive, &cold_floor);
        report::print_cold(&cold_database, &cold_floor);
        return;
    }

    eprintln!(
        "bench: warm invocations ({WARM_INVOCATIONS} each; memory over {MEMORY_INVOCATIONS})"
    );
    let warm_floor = warm(&api, &floor_bin, &no_env, &event, WARM_INVOCATIONS).await;
    let warm_health = warm(&api, &health_bin, &health_env, &event, MEMORY_INVOCATIONS).await;
    let warm_naive = warm(&api, &naive_bin, &naive_env, &event, WARM_INVOCATIONS).await;
    let warm_database = warm(&api, &health_bin, &database_env, &event, WARM_INVOCATIONS).await;
    if std::env::var_os("BENCH_NAIVE_ONLY").is_some() {
        // A quick look at the naive handler's rows: nothing written.
        report::print_naive(
            &cold_health,
            &cold_database,
            &cold_naive,
            &warm_health,
            &warm_database,
            &warm_naive,
        );
        return;
    }

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
    eprintln!("bench: warm /metrics scrapes");
    let metrics = metrics_scrapes(&health_bin, &health_env).await;

    let queue = queue_bench(&pg, &api, &health_bin, &health_env, &event).await;
    eprintln!("bench: partitions check with {PARTITIONS} partitions");
    let partitions =
        partitions_bench(&pg, &api, &health_bin, &health_env, &event, PARTITIONS).await;

    eprintln!("bench: database capacity reads (vs SELECT 1; the size on 20,000 relations)");
    let capacity = capacity_bench(&pg, &api, &health_bin, &health_env, &event).await;

    eprintln!(
        "bench: warm answer with app (Node.js on loopback), live_logs and tenancy, and without"
    );
    let meshhook_components =
        meshhook_components_bench(&pg, &api, &health_bin, &health_env, &event).await;

    eprintln!("bench: runs check (1,000,000 finished runs, 10,000,000 events, 1,000 in flight)");
    let runs = runs_bench(&pg, &api, &health_bin, &health_env, &event).await;

    let binary_size = file_size(&health_bin);
    let zip_size = zipped_size(&health_bin);
    let floor_size = file_size(&floor_bin);

    let round_trips: Option<RoundTrips> = std::fs::read_to_string(&round_trips_file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    report::write(&Measurements {
        cold_floor,
        cold_health,
        cold_naive,
        cold_database,
        warm_floor,
        warm_health,
        warm_naive,
        warm_database,
        round_trips,
        frozen_times,
        hang_times,
        serve_cached,
        serve_uncached,
        metrics,
        queue,
        partitions,
        runs,
        capacity,
        meshhook_components,
        binary_size,
        zip_size,
        floor_size,
    });
}
