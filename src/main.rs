//! Argument parsing → one of the modes; nothing else.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use meshhook_health::checks::runs::RunsTables;
use meshhook_health::config::{self, Config, ConfigError, Environment};
use meshhook_health::db::{Database, DbConfig};
use meshhook_health::shutdown::Shutdown;
use meshhook_health::{heartbeat, lambda, migrate, serve, App};

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
    Check,
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
        Command::Check => Mode::Check,
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
    Check,
    Heartbeat {
        worker_id: String,
        kind: String,
        every: Option<Duration>,
    },
    Migrate,
}

/// What ended a mode early.
enum Failure {
    Config(ConfigError),
    Runtime(String),
    Unhealthy,
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

fn run(mode: Mode) -> ExitCode {
    meshhook_health::telemetry::init();
    // One thread: a health endpoint waits on I/O, and a Lambda container
    // has one or two vCPUs; spawning worker threads would only cost start-up.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meshhook-health: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_mode(mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unhealthy) => ExitCode::FAILURE,
        Err(Failure::Config(e)) => {
            eprintln!("meshhook-health: configuration error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("meshhook-health: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn app(lambda: bool) -> Result<Arc<App>, Failure> {
    let mut config = Config::load(&Environment).await?;
    config.emit_metrics = lambda;
    App::new(config)
        .map(Arc::new)
        .map_err(|e| Failure::Runtime(e.to_string()))
}

fn signals() -> Result<Shutdown, Failure> {
    Shutdown::listen().map_err(|e| Failure::Runtime(format!("cannot listen for signals: {e}")))
}

async fn run_mode(mode: Mode) -> Result<(), Failure> {
    match mode {
        Mode::Lambda => {
            let app = app(true).await?;
            app.warm_up();
            lambda::run(app)
                .await
                .map_err(|e| Failure::Runtime(format!("Lambda runtime stopped: {e}")))
        }
        Mode::Serve { listen } => {
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
                .map_err(|e| Failure::Runtime(format!("cannot listen on {addr}: {e}")))?;
            app.warm_up();
            let max_connections = serve::connection_cap(open_files);
            tracing::info!(%addr, max_connections, "serving /health");
            serve::serve(app, listener, max_connections, async move {
                shutdown.recv().await
            })
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
        }
        Mode::Check => {
            let app = app(false).await?;
            let report = app.evaluator.evaluate().await;
            let configured = app.config.meshhook_version.as_deref();
            println!(
                "{}",
                meshhook_health::report::render(&report, configured, false)
            );
            match report.status {
                meshhook_health::outcome::Status::Unhealthy => Err(Failure::Unhealthy),
                _ => Ok(()),
            }
        }
        Mode::Heartbeat {
            worker_id,
            kind,
            every,
        } => {
            if worker_id.trim().is_empty() {
                return Err(ConfigError::new("--worker-id", "must not be empty").into());
            }
            let db = Database::new(&DbConfig::load(&Environment).await?);
            let version = config::meshhook_version(&Environment);
            let spec = heartbeat::Heartbeat {
                worker_id: &worker_id,
                kind: &kind,
                version: version.as_deref(),
                every,
            };
            heartbeat::run(&db, spec, signals()?).await.map_err(|e| {
                Failure::Runtime(format!("heartbeat failed ({}): {e}", e.reason.as_str()))
            })
        }
        Mode::Migrate => {
            let runs = RunsTables::from_source(&Environment)?;
            let db = Database::new(&DbConfig::load(&Environment).await?);
            migrate::migrate(&db, &runs).await.map_err(|e| {
                Failure::Runtime(format!("migration failed ({}): {e}", e.reason.as_str()))
            })?;
            eprintln!(
                "meshhook-health: monitoring.worker_heartbeats and monitoring.runs_progress() are ready"
            );
            Ok(())
        }
    }
}
