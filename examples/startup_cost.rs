//! What start-up costs, in a fresh process: reading the configuration,
//! building the app (TLS set-up for Postgres and HTTPS included), and the
//! first evaluation (connection, TLS handshake, queries). Prints one line of
//! microseconds: `config app first_evaluation`.
//!
//! Configuration comes from the environment, as in production. Compare
//! `sslmode=disable` with `require`/`verify-full` to see what TLS adds
//! (`scripts/tls-startup-cost.sh`), or `DATABASE_URL` with
//! `DATABASE_SECRET_ID` to see what Secrets Manager adds
//! (`scripts/secret-startup-cost.sh`).

use std::time::Instant;

use meshhook_health::config::Config;
use meshhook_health::env::Environment;
use meshhook_health::App;

fn main() {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // As `main` does: with DATABASE_SECRET_ID, this reads Secrets Manager.
    let config = match runtime.block_on(Config::load(&Environment)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("startup_cost: {e}");
            std::process::exit(2);
        }
    };
    let configured = started.elapsed();
    let app = App::new(config).expect("app");
    let built = started.elapsed();
    let report = runtime.block_on(app.evaluator.evaluate());
    let evaluated = started.elapsed();
    println!(
        "{} {} {} {}",
        configured.as_micros(),
        (built - configured).as_micros(),
        (evaluated - built).as_micros(),
        report.status
    );
}
