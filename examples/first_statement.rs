//! What a fresh server session's first statement costs. For `SELECT 1`,
//! the database component's statement (its function's), its inline
//! statements (what the first evaluation sends) and each statement file
//! named in `SQL_FILES` (comma-separated; a file's statements, separated by
//! lines holding only `;`, are pipelined as the checks pipeline theirs; the
//! `workers_*` files need a database where `migrate` ran), opens `ROUNDS`
//! (60) fresh connections to
//! `DATABASE_URL` (no TLS: point it at a loopback server with
//! `sslmode=disable`), runs the statement twice on each, and prints the
//! medians in µs: connect, first run, second run. A fresh backend's first
//! run pays for loading its caches of every catalog, function and operator
//! the statement touches; `SELECT 1` touches none (BENCHMARKS.md, "Where
//! the cold time went").
//!
//! `DATABASE_URL=postgres://app:pw@127.0.0.1:5432/postgres?sslmode=disable
//!  cargo run --release --example first_statement` (the dev-dependency on
//! this crate turns on `test-seams`, which makes the statement public).

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("first_statement: set DATABASE_URL (sslmode=disable)");
        std::process::exit(2);
    };
    let rounds = match std::env::var("ROUNDS").map(|r| r.parse::<usize>()) {
        Err(_) => 60,
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => {
            eprintln!("first_statement: ROUNDS must be a positive number");
            std::process::exit(2);
        }
    };
    let mut statements = vec![
        ("SELECT 1".to_owned(), "SELECT 1".to_owned()),
        (
            "the database component's statement (its function's)".to_owned(),
            meshhook_health::checks::database::statement(false),
        ),
        (
            "the database component's inline statements".to_owned(),
            meshhook_health::checks::database::inline_statements(false).join(SEPARATOR),
        ),
    ];
    for file in std::env::var("SQL_FILES")
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.is_empty())
    {
        match std::fs::read_to_string(file) {
            Ok(sql) => statements.push((file.to_owned(), sql)),
            Err(e) => {
                eprintln!("first_statement: SQL_FILES: {file}: {e}");
                std::process::exit(2);
            }
        }
    }
    for (name, sql) in &statements {
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..rounds {
            match fresh_session(&url, sql).await {
                Ok(round) => {
                    for (all, one) in times.iter_mut().zip(round) {
                        all.push(one);
                    }
                }
                Err(e) => {
                    eprintln!("first_statement: {name}: {e}");
                    std::process::exit(1);
                }
            }
        }
        let [connect, first, second] = times.map(|mut t| {
            t.sort();
            t[t.len() / 2].as_micros()
        });
        println!("{name}: connect {connect} µs, first run {first} µs, second run {second} µs");
    }
}

/// Connect, first run and second run of `sql` on a new connection.
async fn fresh_session(url: &str, sql: &str) -> Result<[Duration; 3], tokio_postgres::Error> {
    let started = Instant::now();
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let connection = tokio::spawn(connection);
    let connected = started.elapsed();
    run(&client, sql).await?;
    let first = started.elapsed();
    run(&client, sql).await?;
    let second = started.elapsed();
    drop(client);
    let _ = connection.await;
    Ok([connected, first - connected, second - first])
}

/// Between two statements of a file: a line holding only `;`.
const SEPARATOR: &str = "\n;\n";

/// Runs each of the statements in `sql`, pipelined on one connection: sent
/// together, answered in one round trip.
async fn run(client: &tokio_postgres::Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    let statements = sql
        .split(SEPARATOR)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    futures_util::future::try_join_all(statements.map(|s| client.query_typed(s, &[]))).await?;
    Ok(())
}
