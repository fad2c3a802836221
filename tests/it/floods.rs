//! Floods in serve mode: the cache keeps them away from the database, the
//! pool caps connections when the cache is off, concurrent requests share
//! the evaluation in flight (no false outage from queueing for the pooled
//! connection), and memory stays flat. They assert connection counts and
//! the truth of every answer, not how fast the machine is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::latency::Latency;
use crate::support::wait::until;
use crate::support::{Postgres, Stack};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `total` GETs over `connections` concurrent keep-alive connections;
/// returns how many were answered 200 with a healthy body (and prints the
/// first other answer, for the failure message).
async fn flood(url: &str, total: usize, connections: usize) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(std::sync::Mutex::new(None::<String>));
    // One client per worker: one keep-alive connection each. Built before
    // any worker starts: building one is CPU work (TLS roots) that, done
    // inside the workers, stalled those that had connected but not yet
    // written their request past serve's 5 s header timeout on a slow
    // machine.
    let clients: Vec<reqwest::Client> = (0..connections)
        .map(|_| crate::support::http_client())
        .collect();
    let workers = clients.into_iter().map(|client| {
        let (next, ok, other, url) = (next.clone(), ok.clone(), other.clone(), url.to_owned());
        tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let response = client.get(&url).send().await.unwrap();
                let status = response.status();
                let body = response.bytes().await.unwrap();
                if status == 200 && body.starts_with(br#"{"status":"healthy""#) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    let mut other = other.lock().unwrap();
                    other.get_or_insert_with(|| {
                        format!("{status} {}", String::from_utf8_lossy(&body))
                    });
                }
            }
        })
    });
    for worker in futures_util::future::join_all(workers).await {
        worker.unwrap();
    }
    if let Some(other) = other.lock().unwrap().as_ref() {
        eprintln!("flood: first answer that was not healthy: {other}");
    }
    ok.load(Ordering::Relaxed)
}

/// The burst of the evaluator's promise: serve mode, cache off, one pooled
/// connection, Postgres 5 ms away (2.5 ms each way through a delay line),
/// a 300 ms deadline, 100 concurrent clients sending 1,000 requests. Every
/// answer must be 200 healthy: requests share the evaluation in flight
/// instead of queueing for the connection. `supabase_delay` makes every
/// Supabase probe answer that late, which must not hold the database
/// connection (an evaluation gives it back when its database checks end).
async fn burst_without_cache_is_all_healthy(supabase_delay: Duration) {
    let mut stack = Stack::new().await;
    let line = Latency::start(stack.pg().port(), Duration::from_micros(2_500));
    let url = stack.env["DATABASE_URL"].replace(
        &format!(":{}/", stack.pg().port()),
        &format!(":{}/", line.port()),
    );
    stack
        .set("DATABASE_URL", &url)
        .set("HEALTH_CACHE_TTL_MS", "0")
        .set("DATABASE_POOL_MAX", "1")
        .set("HEALTH_TIMEOUT_MS", "300");
    let auth =
        crate::support::supabase::json(200, crate::support::supabase::fixture("auth_health.json"))
            .set_delay(supabase_delay);
    stack.supabase.answer("/auth/v1/health", auth).await;
    let realtime = crate::support::supabase::WebSocketUpgrade {
        key: crate::support::supabase::ANON_KEY.to_owned(),
        delay: supabase_delay,
    };
    stack
        .supabase
        .answer("/realtime/v1/websocket", realtime)
        .await;
    let (_server, url) = crate::support::serve_process(&stack.env);
    assert_eq!(
        flood(&url, 1_000, 100).await,
        1_000,
        "every answer 200 healthy while every dependency was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cache_a_burst_against_a_distant_database_and_one_connection_is_all_healthy() {
    burst_without_cache_is_all_healthy(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cache_a_slow_supabase_does_not_hold_the_database_connection_during_a_burst() {
    burst_without_cache_is_all_healthy(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_costs_the_database_one_evaluation_per_cache_window_and_no_memory() {
    let pg = Postgres::dedicated_with(&["shared_preload_libraries=pg_stat_statements"]);
    pg.execute("postgres", "CREATE EXTENSION pg_stat_statements")
        .await;
    let mut stack = Stack::on(pg).await;
    stack.unset("HEALTH_CACHE_TTL_MS"); // the default, 1000 ms
    let (server, url) = crate::support::serve_process(&stack.env);

    assert_eq!(flood(&url, 500, 50).await, 500);
    let rss_warm = rss_kib(server.0.id());
    stack
        .pg()
        .execute("postgres", "SELECT pg_stat_statements_reset()")
        .await;
    let started = Instant::now();
    assert_eq!(
        flood(&url, 20_000, 50).await,
        20_000,
        "every answer correct"
    );
    let elapsed = started.elapsed();
    let rss_after = rss_kib(server.0.id());

    let evaluations: u64 = stack
        .pg()
        .value(
            "postgres",
            // The database component's reading, once per evaluation:
            // inline (the first; its settings statement), then through
            // its function.
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements \
             WHERE query LIKE 'SELECT pg_is_in_recovery()%' \
                OR query LIKE 'SELECT * FROM monitoring.database_readings_v1(%'",
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    let windows = elapsed.as_millis() as u64 / 1000 + 1;
    eprintln!(
        "flood: 20,000 requests in {elapsed:?}, {evaluations} evaluations, RSS {rss_warm} -> {rss_after} KiB"
    );
    assert!(evaluations >= 1, "the flood never reached the database");
    assert!(
        evaluations <= windows,
        "{evaluations} evaluations in {elapsed:?} ({windows} cache windows)"
    );
    // Memory flat: a few hundred KiB of allocator noise at most.
    assert!(
        rss_after <= rss_warm + 2048,
        "RSS grew from {rss_warm} KiB to {rss_after} KiB over 20,000 requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cache_fifty_concurrent_requests_never_hold_more_than_pool_max_connections() {
    let mut stack = Stack::dedicated().await;
    // The checker's role may hold one connection (DATABASE_POOL_MAX's
    // default): Postgres refuses a second one whenever it is asked for, and
    // that evaluation would not answer healthy. Exact where sampling
    // pg_stat_activity could miss a spike between two samples.
    stack
        .sql(
            "CREATE ROLE flood LOGIN CONNECTION LIMIT 1; \
             GRANT USAGE ON SCHEMA monitoring TO flood; \
             GRANT SELECT ON monitoring.worker_heartbeats TO flood",
        )
        .await;
    let as_flood = crate::support::as_role(&stack.env["DATABASE_URL"], "flood");
    stack
        .set("HEALTH_CACHE_TTL_MS", "0")
        .set("DATABASE_URL", &as_flood);
    let (_server, url) = crate::support::serve_process(&stack.env);
    assert_eq!(
        flood(&url, 2_000, 50).await,
        2_000,
        "every answer healthy: no second connection was ever asked for"
    );
    // The limit was armed: the checker holds its one connection, so
    // another login as its role is refused.
    let second = tokio_postgres::connect(&as_flood, tokio_postgres::NoTls).await;
    let refused = second.err().and_then(|e| e.code().cloned());
    assert_eq!(
        refused,
        Some(tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS),
        "a second connection as the checker's role was let in"
    );
}

/// Open file descriptors of process `pid`.
fn open_fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_clients_with_unfinished_headers_do_not_starve_health() {
    use std::io::Write;
    use std::os::unix::process::CommandExt;

    const SLOW_CLIENTS: usize = 1_100;
    // The test holds those sockets itself: it needs its own limit raised.
    let ours = meshhook_health::serve::raise_open_file_limit().unwrap_or(0);
    if ours < (SLOW_CLIENTS as u64) * 2 + 256 {
        crate::support::skip(
            "floods::eleven_hundred_clients_with_unfinished_headers_do_not_starve_health",
            &format!("this machine's hard open-file limit ({ours}) is too low to hold the clients"),
        );
        return;
    }
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_CACHE_TTL_MS", "0")
        .set("HEALTH_TIMEOUT_MS", "1000");
    let port = crate::support::postgres::free_port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"));
    command
        .env_clear()
        .envs(&stack.env)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork
    // and exec: the common default soft limit of 1,024, hard limit kept.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = 1_024;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = crate::support::Running(command.spawn().unwrap());
    crate::support::wait_for_port(port);
    // It raised its soft limit to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.0.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files[3], open_files[4],
        "soft limit not raised: {limits}"
    );

    let slow: Vec<std::net::TcpStream> = (0..SLOW_CLIENTS)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Until the server holds them all, if it can — briefly: the clients'
    // header timeout (5 s) would otherwise free the server by itself.
    let _ = until(Duration::from_millis(1_500), async || {
        match open_fds_of(server.0.id()) {
            n if n < SLOW_CLIENTS => Err(n),
            n => Ok(n),
        }
    })
    .await;
    let asked = Instant::now();
    let answer = crate::support::http_client()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    let elapsed = asked.elapsed();
    assert_eq!(answer.status(), 200);
    assert!(
        elapsed < stack.timeout() + crate::support::SLACK,
        "/health took {elapsed:?} while {SLOW_CLIENTS} clients held unfinished headers"
    );
    drop(slow);
}
