//! The command line: arguments → one of the modes (Lambda, serve, check,
//! heartbeat, migrate), each a short function that builds what it needs
//! from the library; and what ended a mode → the exit code.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use meshhook_health::checks::runs::RunsTables;
use meshhook_health::config::{self, Config};
use meshhook_health::db::{Database, DbConfig};
use meshhook_health::env::{ConfigError, Environment};
use meshhook_health::failure::Failure;
use meshhook_health::outcome::Status;
use meshhook_health::shutdown::Shutdown;
use meshhook_health::{heartbeat, lambda, migrate, report, serve, App, StartupError};

/// Exit code for bad configuration or usage (`docs/API.md`, "Command line").
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "meshhook-health",
    version,
    about = "Health endpoint for MeshHook: Postgres, Supabase, workers and (opt-in) its job queue.",
    long_about = "Health endpoint for MeshHook: Postgres, Supabase, workers and (opt-in) its job queue.\n\n\
        With no command and AWS_LAMBDA_RUNTIME_API set, runs as an AWS Lambda function.\n\
        Configuration comes from the environment; see README.md.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GET /health and /health/live over HTTP/1.1 until SIGTERM/SIGINT.
    Serve {
        /// Address to listen on [default: HEALTH_LISTEN, else 0.0.0.0:$PORT
        /// when PORT is set, else 127.0.0.1:3000].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Run every check once and print the public JSON body; exit 0 healthy
    /// or degraded, 1 unhealthy, 2 bad configuration.
    Check {
        /// Print the verbose body instead (reasons, latencies, counts, and
        /// the private components); the exit code stays the public status's.
        #[arg(long)]
        verbose: bool,
    },
    /// Write this worker's heartbeat row (once, or every SECS until SIGTERM,
    /// then delete it).
    Heartbeat {
        /// Unique id of the worker (e.g. host name + pid).
        #[arg(long, value_name = "ID")]
        worker_id: String,
        /// Worker kind, for WORKER_MIN_ALIVE_BY_KIND.
        #[arg(long, value_name = "KIND", default_value = "worker")]
        kind: String,
        /// Repeat every SECS seconds until stopped.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        every: Option<u64>,
    },
    /// Create the monitoring.worker_heartbeats table if it does not exist, and
    /// (re)create the runs component's monitoring.runs_progress() function.
    Migrate,
}

fn main() -> ExitCode {
    // Lambda's own invocation (no arguments, Runtime API set) skips the
    // argument parser: building it is a tenth of a millisecond of cold
    // start, for nothing to parse.
    if std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return run(Mode::Lambda);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let Some(command) = cli.command else {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            return run(Mode::Lambda);
        }
        let mut usage = <Cli as clap::CommandFactory>::command();
        eprintln!("{}", usage.render_usage());
        eprintln!(
            "No command given and AWS_LAMBDA_RUNTIME_API is not set; try `meshhook-health --help`."
        );
        return ExitCode::from(EXIT_USAGE);
    };
    run(match command {
        Command::Serve { listen } => Mode::Serve { listen },
        Command::Check { verbose } => Mode::Check { verbose },
        Command::Heartbeat {
            worker_id,
            kind,
            every,
        } => Mode::Heartbeat {
            worker_id,
            kind,
            every: every.map(Duration::from_secs),
        },
        Command::Migrate => Mode::Migrate,
    })
}

enum Mode {
    Lambda,
    Serve {
        listen: Option<String>,
    },
    Check {
        verbose: bool,
    },
    Heartbeat {
        worker_id: String,
        kind: String,
        every: Option<Duration>,
    },
    Migrate,
}

/// What ended a mode early, and so the exit code: a configuration error
/// exits 2, anything else 1. Each carries its typed cause; the text is
/// made only when it is printed.
#[derive(Debug, thiserror::Error)]
enum Exit {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Startup(#[from] StartupError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Serve(std::io::Error),
    #[error("Lambda runtime stopped: {0}")]
    Lambda(lambda_runtime::Error),
    #[error("heartbeat failed ({}): {}", .0.reason.as_str(), .0)]
    Heartbeat(Failure),
    #[error("migration failed ({}): {}", .0.reason.as_str(), .0)]
    Migrate(Failure),
    /// `check` found MeshHook unhealthy: exit 1, nothing more to say (the
    /// body is on stdout, the reasons in the log).
    #[error("unhealthy")]
    Unhealthy,
}

fn run(mode: Mode) -> ExitCode {
    meshhook_health::logging::init();
    match run_in_runtime(mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Unhealthy) => ExitCode::FAILURE,
        Err(e @ Exit::Config(_)) => {
            eprintln!("meshhook-health: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("meshhook-health: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_in_runtime(mode: Mode) -> Result<(), Exit> {
    // One thread: a health endpoint waits on I/O, and a Lambda container
    // has one or two vCPUs; spawning worker threads would only cost start-up.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Exit::Runtime)?;
    runtime.block_on(async {
        match mode {
            Mode::Lambda => lambda_mode().await,
            Mode::Serve { listen } => serve_mode(listen).await,
            Mode::Check { verbose } => check_mode(verbose).await,
            Mode::Heartbeat {
                worker_id,
                kind,
                every,
            } => heartbeat_mode(&worker_id, &kind, every).await,
            Mode::Migrate => migrate_mode().await,
        }
    })
}

async fn app(lambda: bool) -> Result<Arc<App>, Exit> {
    let mut config = Config::load(&Environment).await?;
    config.lambda = lambda;
    Ok(Arc::new(App::new(config)?))
}

fn signals() -> Result<Shutdown, Exit> {
    Shutdown::listen().map_err(Exit::Signals)
}

async fn lambda_mode() -> Result<(), Exit> {
    let app = app(true).await?;
    app.warm_up();
    lambda::run(app).await.map_err(Exit::Lambda)
}

async fn serve_mode(listen: Option<String>) -> Result<(), Exit> {
    let listen = match listen {
        Some(addr) => Some(config::parse_listen("--listen", &addr)?),
        None => None,
    };
    let open_files = serve::raise_open_file_limit();
    let app = app(false).await?;
    let addr = listen.unwrap_or(app.config.listen);
    let mut shutdown = signals()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Exit::Listen { addr, source })?;
    app.warm_up();
    let max_connections = serve::connection_cap(open_files);
    tracing::info!(%addr, max_connections, "serving /health");
    let served = serve::serve(app.clone(), listener, max_connections, async move {
        shutdown.recv().await
    })
    .await;
    app.close().await;
    served.map_err(Exit::Serve)
}

async fn check_mode(verbose: bool) -> Result<(), Exit> {
    let app = app(false).await?;
    let report = app.evaluator.evaluate().await;
    app.close().await;
    let configured = app.config.meshhook_version.as_deref();
    println!("{}", report::render(&report, configured, verbose));
    match report.status {
        Status::Unhealthy => Err(Exit::Unhealthy),
        _ => Ok(()),
    }
}

async fn heartbeat_mode(worker_id: &str, kind: &str, every: Option<Duration>) -> Result<(), Exit> {
    if worker_id.trim().is_empty() {
        return Err(ConfigError::new("--worker-id", "must not be empty").into());
    }
    let db = Database::new(&DbConfig::load(&Environment).await?);
    let version = config::meshhook_version(&Environment);
    let spec = heartbeat::Heartbeat {
        worker_id,
        kind,
        version: version.as_deref(),
        every,
    };
    heartbeat::run(&db, spec, signals()?)
        .await
        .map_err(Exit::Heartbeat)
}

async fn migrate_mode() -> Result<(), Exit> {
    let runs = RunsTables::from_source(&Environment)?;
    let db = Database::new(&DbConfig::load(&Environment).await?);
    migrate::migrate(&db, &runs).await.map_err(Exit::Migrate)?;
    eprintln!(
        "meshhook-health: monitoring.worker_heartbeats, monitoring.runs_progress(), \
         monitoring.database_readings_v1(), monitoring.live_logs_readings_v1(), \
         monitoring.worker_readings_v1() and monitoring.partitions_readings_v1() are ready"
    );
    Ok(())
}
