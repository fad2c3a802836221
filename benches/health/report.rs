//! The bench's report: one row per measure next to the floor and its
//! target, printed as a table and written to `BENCHMARKS.md`, with the
//! latency distributions drawn in `docs/benchmarks.svg`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::drivers::{
    CapacityBench, Cold, Cpu, MeshHookComponentsBench, QueueBench, RoundTrips, Warm, COLD_STARTS,
    FAILURE_INVOCATIONS, MEMORY_INVOCATIONS, METRICS_SCRAPES, WARM_INVOCATIONS,
};
use crate::harness::{machine, ms, percentile};

/// Everything one `make bench` measured.
pub struct Measurements {
    pub cold_floor: Cold,
    pub cold_health: Cold,
    /// The naive handler (`examples/naive.rs`): connects, `SELECT 1`.
    pub cold_naive: Cold,
    /// meshhook-health with the database component alone.
    pub cold_database: Cold,
    pub warm_floor: Warm,
    pub warm_health: Warm,
    pub warm_naive: Warm,
    pub warm_database: Warm,
    /// Behind delay lines, on PostgreSQL 17 (`make bench` measures them
    /// first, in a run of their own); `None` when that run did not happen.
    pub round_trips: Option<RoundTrips>,
    /// Handler times with the database frozen, sorted.
    pub frozen_times: Vec<Duration>,
    /// Handler times with Supabase never answering, sorted.
    pub hang_times: Vec<Duration>,
    /// Serve mode under wrk: (requests/s, p99 ms), cache on and off.
    pub serve_cached: Option<(f64, f64)>,
    pub serve_uncached: Option<(f64, f64)>,
    /// Warm `/metrics` round trips (cached evaluation), sorted, and the
    /// body's size in bytes.
    pub metrics: (Vec<Duration>, usize),
    pub queue: QueueBench,
    /// Warm handler times, database + partitions, 120 partitions.
    pub partitions: Vec<Duration>,
    /// Warm handler times, database + runs: 1,000,000 finished runs,
    /// 10,000,000 events in 12 monthly partitions, 1,000 in flight.
    pub runs: Vec<Duration>,
    pub capacity: CapacityBench,
    pub meshhook_components: MeshHookComponentsBench,
    pub binary_size: Option<u64>,
    pub zip_size: Option<u64>,
    pub floor_size: Option<u64>,
}

/// Prints the cold-start rows alone (`BENCH_COLD_ONLY=1 make bench`).
pub fn print_cold(health: &Cold, floor: &Cold) {
    let p = |v: &[Duration]| ms(percentile(v, 0.5));
    println!(
        "cold start medians of {COLD_STARTS}: Init {:.2} ms (floor {:.2}), first answer {:.2} ms (floor {:.2})",
        p(&health.init),
        p(&floor.init),
        p(&health.first_answer),
        p(&floor.first_answer)
    );
}

/// A warm run's on-CPU time per answer, in ms: the process under test /
/// Postgres / (with `app`, MeshHook's app on Node.js /) the bench's
/// stand-ins.
fn cpu(c: &Cpu, app: bool) -> String {
    let app = if app {
        format!(" / {:.3}", ms(c.app))
    } else {
        String::new()
    };
    format!(
        "{:.3} / {:.3}{app} / {:.3} ms",
        ms(c.process),
        ms(c.postgres),
        ms(c.stand_ins)
    )
}

/// `BENCH_NAIVE_ONLY=1 make bench`: against the naive handler.
pub fn print_naive(
    cold_health: &Cold,
    cold_database: &Cold,
    cold_naive: &Cold,
    warm_health: &Warm,
    warm_database: &Warm,
    warm_naive: &Warm,
) {
    let p = |v: &[Duration]| ms(percentile(v, 0.5));
    println!(
        "cold first answer: default {:.2} ms, database only {:.2} ms, naive {:.2} ms; warm p50: default {:.3} ms, database only {:.3} ms, naive {:.3} ms",
        p(&cold_health.first_answer),
        p(&cold_database.first_answer),
        p(&cold_naive.first_answer),
        p(&warm_health.times),
        p(&warm_database.times),
        p(&warm_naive.times),
    );
    println!(
        "on-CPU per warm answer (process / Postgres / stand-ins): default {}, database only {}, naive {}",
        cpu(&warm_health.cpu, false),
        cpu(&warm_database.cpu, false),
        cpu(&warm_naive.cpu, false)
    );
}

/// The round-trip rows' numbers (`BENCH_ROUND_TRIPS=1`).
pub fn print_round_trips(r: &RoundTrips) {
    for (what, lines) in [("RTT", &r.at_rtt), ("no delay", &r.at_zero)] {
        println!(
            "{what} ({} ms), server {}: warm p50 {:.2} ms; cold first answer postgres {:.2} ms, direct {:.2} ms",
            r.rtt_ms,
            r.server_version,
            median(&lines.warm_ms),
            median(&lines.cold_postgres_ms),
            median(&lines.cold_direct_ms),
        );
    }
}

/// Round trips in `at_rtt` over `at_zero` (medians), and both medians.
fn round_trips_of(at_rtt: &[f64], at_zero: &[f64], rtt: f64) -> (f64, f64, f64) {
    let (far, near) = (median(at_rtt), median(at_zero));
    ((far - near) / rtt, far, near)
}

fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `BENCH_COMPONENTS_ONLY=1 make bench`: the opt-in components' warm cost.
pub fn print_components(c: &MeshHookComponentsBench) {
    let p = |v: &[Duration]| ms(percentile(v, 0.5));
    let plain = p(&c.without);
    println!(
        "warm p50: without {plain:.3} ms; +live_logs {:+.3}; +tenancy {:+.3}; +both {:+.3}; +both +app {:+.3}; the app alone {:.3} ms",
        p(&c.live_logs_only) - plain,
        p(&c.tenancy_only) - plain,
        p(&c.catalog_only) - plain,
        p(&c.with) - plain,
        p(&c.app_alone)
    );
    println!(
        "on-CPU per warm answer (process / Postgres / app / stand-ins): without {}, with app, live_logs and tenancy {}",
        cpu(&c.cpu_without, true),
        cpu(&c.cpu_with, true)
    );
}

/// Prints the table and writes `BENCHMARKS.md` (keeping its "Notes"
/// section) and `docs/benchmarks.svg`.
pub fn write(m: &Measurements) {
    let Measurements {
        cold_floor,
        cold_health,
        warm_floor,
        warm_health,
        frozen_times,
        hang_times,
        queue,
        partitions,
        runs,
        capacity,
        ..
    } = m;
    let (serve_cached, serve_uncached) = (m.serve_cached, m.serve_uncached);
    let (binary_size, zip_size, floor_size) = (m.binary_size, m.zip_size, m.floor_size);
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
        format!("≤ floor + 5 ms: {}", verdict(ca <= cfa + 5.0)),
    );
    let (w50, f50) = (p(&warm_health.times, 0.5), p(&warm_floor.times, 0.5));
    row(
        "warm handler time p50",
        format!("{w50:.3} ms"),
        format!("{f50:.3} ms"),
        format!("≤ floor + 1 ms: {}", verdict(w50 <= f50 + 1.0)),
    );
    let (cn, cd) = (
        p(&m.cold_naive.first_answer, 0.5),
        p(&m.cold_database.first_answer, 0.5),
    );
    row(
        "cold first answer vs the naive handler (`examples/naive.rs`: connects, `SELECT 1`), median: database + supabase + workers / database only",
        format!("{ca:.2} ms ({:.2}×) / {cd:.2} ms ({:.2}×)", ca / cn, cd / cn),
        format!("{cn:.2} ms (naive)"),
        format!(
            "≤ 1.1× naive: {} / {}",
            verdict(ca <= 1.1 * cn),
            verdict(cd <= 1.1 * cn)
        ),
    );
    let (wn, wd) = (p(&m.warm_naive.times, 0.5), p(&m.warm_database.times, 0.5));
    row(
        "warm handler time p50 vs the naive handler: database + supabase + workers / database only",
        format!(
            "{w50:.3} ms ({:+.3}) / {wd:.3} ms ({:+.3})",
            w50 - wn,
            wd - wn
        ),
        format!("{wn:.3} ms (naive)"),
        format!(
            "≤ naive + 0.3 ms: {} / {}",
            verdict(w50 <= wn + 0.3),
            verdict(wd <= wn + 0.3)
        ),
    );
    row(
        "on-CPU time per warm answer (schedstat over the warm run ÷ answers): this process / the Postgres server / the bench's stand-ins (Runtime API, Supabase), database + supabase + workers; database only",
        format!("{}; {}", cpu(&m.warm_health.cpu, false), cpu(&m.warm_database.cpu, false)),
        cpu(&m.warm_naive.cpu, false),
        "reported".to_owned(),
    );
    if let Some(r) = &m.round_trips {
        let rtt = r.rtt_ms;
        let major = r.server_version / 10_000;
        let (warm, far, near) = round_trips_of(&r.at_rtt.warm_ms, &r.at_zero.warm_ms, rtt);
        row(
            &format!("warm answer, database + supabase + workers, behind {rtt} ms RTT lines to Postgres (TLS, SCRAM, PostgreSQL {major}) and Supabase, p50, in round trips (minus the same through lines of no delay)"),
            format!("{warm:.2} RTT ({far:.2} vs {near:.2} ms)"),
            "1 RTT".into(),
            format!("≤ 1.2 RTT: {}", verdict(warm <= 1.2)),
        );
        for (negotiation, far, near, floor) in [
            (
                "postgres",
                &r.at_rtt.cold_postgres_ms,
                &r.at_zero.cold_postgres_ms,
                7.0,
            ),
            (
                "direct",
                &r.at_rtt.cold_direct_ms,
                &r.at_zero.cold_direct_ms,
                6.0,
            ),
        ] {
            let (value, target) = if far.is_empty() || near.is_empty() {
                ("refused by this server".to_owned(), "—".to_owned())
            } else {
                let (rtts, far, near) = round_trips_of(far, near, rtt);
                (
                    format!("{rtts:.2} RTT ({far:.2} vs {near:.2} ms)"),
                    format!("≤ floor + 0.5 RTT: {}", verdict(rtts <= floor + 0.5)),
                )
            };
            let counted = if negotiation == "postgres" {
                "TCP 1 + SSLRequest 1 + TLS 1.3 1 + startup and SCRAM 3 + statement 1"
            } else {
                "TCP 1 + TLS 1.3 1 + startup and SCRAM 3 + statement 1"
            };
            row(
                &format!("cold first answer (exec → answer), the same lines (each new connection pays TCP's handshake), `sslnegotiation={negotiation}`, median, in round trips"),
                value,
                format!("{floor} RTT ({counted})"),
                target,
            );
        }
        if !r.at_rtt.cold_direct_ms.is_empty() {
            let saved = median(&r.at_rtt.cold_postgres_ms) - median(&r.at_rtt.cold_direct_ms);
            row(
                &format!("`direct` vs `postgres` on PostgreSQL {major}: cold first answer saved at {rtt} ms RTT"),
                format!("{saved:.2} ms = {:.2} RTT", saved / rtt),
                "1 RTT".into(),
                "reported".into(),
            );
        }
    }
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
        format!("{:.1} ms", p(frozen_times, 1.0)),
        "—".into(),
        format!(
            "≤ 150 + 10 ms: {}",
            verdict(!frozen_times.is_empty() && p(frozen_times, 1.0) <= timeout + 10.0)
        ),
    );
    row(
        "answer with Supabase never answering (max)",
        format!("{:.1} ms", p(hang_times, 1.0)),
        "—".into(),
        format!(
            "≤ 150 + 10 ms: {}",
            verdict(!hang_times.is_empty() && p(hang_times, 1.0) <= timeout + 10.0)
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
        "serve mode, 50 connections, cache off (requests share the evaluation in flight)",
        serve(serve_uncached),
        "—".into(),
        "reported".into(),
    );
    let (scrapes, bytes) = &m.metrics;
    let (m50, m99) = (p(scrapes, 0.5), p(scrapes, 0.99));
    row(
        &format!(
            "serve mode: warm `/metrics` ({METRICS_SCRAPES} scrapes in turn on one connection, cached evaluation, OpenMetrics, {bytes} bytes), p50 / p99"
        ),
        format!("{m50:.3} / {m99:.3} ms"),
        "—".into(),
        format!("p99 ≤ 1 ms: {}", verdict(!scrapes.is_empty() && m99 <= 1.0)),
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
    let part50 = p(partitions, 0.5);
    row(
        "partitions check, 120 monthly partitions (database + partitions), warm p50",
        format!("{part50:.2} ms"),
        "—".into(),
        format!("≤ 2 ms: {}", verdict(part50 <= 2.0)),
    );
    let (runs50, runs99) = (p(runs, 0.5), p(runs, 0.99));
    row(
        "runs check, 1,000,000 finished runs, 10,000,000 events over 12 monthly partitions, 1,000 in flight (database + runs), warm p50 / p99",
        format!("{runs50:.2} / {runs99:.2} ms"),
        "—".into(),
        format!("p50 ≤ 10 ms: {}", verdict(runs50 <= 10.0)),
    );
    let (one50, cap50) = (
        p(&capacity.select_one, 0.5),
        p(&capacity.function_call, 0.5),
    );
    row(
        "database check's warm reading (`monitoring.database_readings_v1()`: read-only, connection slots, xid age) vs `SELECT 1`, one connection as a role with no grant, interleaved, p50",
        format!("{cap50:.3} vs {one50:.3} ms (+{:.3})", cap50 - one50),
        "—".into(),
        format!("≤ +0.2 ms: {}", verdict(cap50 - one50 <= 0.2)),
    );
    row(
        "the same readings inline, p50: the first evaluation's plain reads (five statements, pipelined) / the function's statement sent as a statement (planned at every call)",
        format!(
            "{:.3} / {:.3} ms",
            p(&capacity.plain_reads, 0.5),
            p(&capacity.statement, 0.5)
        ),
        "—".into(),
        "reported".into(),
    );
    row(
        &format!(
            "the function's statement with `pg_database_size()`, {} relations, p50 / p99 (why the size is sampled)",
            capacity.relations
        ),
        format!(
            "{:.2} / {:.2} ms",
            p(&capacity.statement_with_size, 0.5),
            p(&capacity.statement_with_size, 0.99)
        ),
        "—".into(),
        "reported".into(),
    );
    let (unlimited50, limited50) = (
        p(&capacity.handler_without_limit, 0.5),
        p(&capacity.handler_with_limit, 0.5),
    );
    row(
        &format!(
            "warm answer, database only, {} relations: `DATABASE_SIZE_LIMIT_BYTES` set (size read every 300 s) vs unset, p50",
            capacity.relations
        ),
        format!("{limited50:.3} vs {unlimited50:.3} ms ({:+.3})", limited50 - unlimited50),
        "—".into(),
        format!("within +0.2 ms: {}", verdict(limited50 - unlimited50 <= 0.2)),
    );
    row(
        &format!(
            "`tenancy`'s catalog reading, {} relations, as a role with no grant, p50 / p99: nothing granted to the browser's roles / every table granted to `anon` (10,000 findings, 100 listed) (why it is sampled)",
            capacity.relations
        ),
        format!(
            "{:.2} / {:.2} ms; {:.2} / {:.2} ms",
            p(&capacity.tenancy_reading, 0.5),
            p(&capacity.tenancy_reading, 0.99),
            p(&capacity.tenancy_reading_all_exposed, 0.5),
            p(&capacity.tenancy_reading_all_exposed, 0.99)
        ),
        "—".into(),
        "reported".into(),
    );
    let components = &m.meshhook_components;
    let (plain50, catalog50, full50, alone50) = (
        p(&components.without, 0.5),
        p(&components.catalog_only, 0.5),
        p(&components.with, 0.5),
        p(&components.app_alone, 0.5),
    );
    let (logs50, tenancy50) = (
        p(&components.live_logs_only, 0.5),
        p(&components.tenancy_only, 0.5),
    );
    row(
        "warm answer with `live_logs` and `tenancy` (read every 60 s) vs without (database + supabase + workers), p50; with `live_logs` alone; with `tenancy` alone",
        format!(
            "{catalog50:.3} vs {plain50:.3} ms ({:+.3}); {:+.3}; {:+.3}",
            catalog50 - plain50,
            logs50 - plain50,
            tenancy50 - plain50
        ),
        "—".into(),
        format!("≤ +0.3 ms: {}", verdict(catalog50 - plain50 <= 0.3)),
    );
    row(
        "the same with `app` too (MeshHook's webhook route re-built on Node.js, loopback), p50; the app's own answer to the probe, from a kept connection, p50",
        format!(
            "{full50:.3} ms ({:+.3} over without); the app alone {alone50:.3} ms",
            full50 - plain50
        ),
        "—".into(),
        format!(
            "≤ +0.3 ms over without: {}; ≤ +0.3 ms over the app's own answer: {}",
            verdict(full50 - plain50 <= 0.3),
            verdict(full50 - alone50.max(plain50) <= 0.3)
        ),
    );
    let (without, with) = (&components.cpu_without, &components.cpu_with);
    row(
        "on-CPU time per warm answer with `app`, `live_logs` and `tenancy` vs without: this process / Postgres / the app (Node.js) / the stand-ins; this process's increment",
        format!(
            "{} vs {} ({:+.3} ms in this process)",
            cpu(with, true),
            cpu(without, true),
            ms(with.process) - ms(without.process)
        ),
        "—".into(),
        "reported".into(),
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
        // Requests share the evaluation in flight, so a flood runs
        // evaluations back to back, not as many as it can: fewer is the
        // point. Reported, no longer aimed at (BENCHMARKS.md, notes).
        "reported".into(),
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
            "< 7 MiB: {}",
            verdict(binary_size.is_some_and(|b| b < 7 * 1_048_576))
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
         (`tests/support`, driven by `benches/health/`); all three checks enabled, cache off unless said, \
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
