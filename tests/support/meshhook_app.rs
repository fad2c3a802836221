//! MeshHook's web app for the `app` tests: `meshhook_app/server.mjs`, its
//! webhook route and login page re-built with node-postgres (installed by
//! `scripts/provision.sh test`), run by Node.js against a test database;
//! and the schema its webhook route reads and writes.

use std::path::Path;
use std::process::{Command, Stdio};

use super::postgres::free_port;
use super::Running;

/// The tables MeshHook's webhook route touches (written for these tests):
/// a workflow is looked up by slug; a hit inserts a run and its first event.
pub const SCHEMA: &str = "CREATE TABLE workflow_definitions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
       project_id uuid NOT NULL, slug text NOT NULL, version int NOT NULL DEFAULT 1); \
     CREATE TABLE workflow_runs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), project_id uuid NOT NULL, \
       workflow_id uuid NOT NULL, status text NOT NULL, started_at timestamptz NOT NULL DEFAULT now()); \
     CREATE TABLE workflow_events (id bigint GENERATED ALWAYS AS IDENTITY, run_id uuid NOT NULL, \
       ts timestamptz NOT NULL DEFAULT now(), type text NOT NULL, payload jsonb NOT NULL DEFAULT '{}')";

/// The app, listening on a free loopback port.
pub struct MeshHookApp {
    pub process: Running,
    pub port: u16,
}

impl MeshHookApp {
    /// Starts the app with `database_url`; waits until it listens.
    pub fn start(database_url: &str) -> MeshHookApp {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/meshhook_app");
        assert!(
            dir.join("node_modules/pg").is_dir(),
            "node-postgres is not installed: run scripts/provision.sh test"
        );
        let port = free_port();
        let child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        super::wait_for_port(port);
        MeshHookApp {
            process: Running(child),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the process has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.0.try_wait().unwrap()
    }
}
