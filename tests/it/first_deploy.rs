//! docs/DEPLOY.md's first deploy, run as written against a real
//! Postgres: `migrate`, the roles, the heartbeat sidecar, then the check the
//! function will make — which must answer healthy. Checked before the
//! heartbeats start too, to keep the documented order honest.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::docs::{block, operations_sql};
use crate::support::postgres::Postgres;
use crate::support::wait::until;

/// A directory whose `meshhook-health` is the binary under test, for PATH.
struct BinDir(tempfile::TempDir);

impl BinDir {
    fn new() -> BinDir {
        let dir = crate::support::temp_dir("first-deploy");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_meshhook-health"),
            dir.path().join("meshhook-health"),
        )
        .unwrap();
        BinDir(dir)
    }

    fn path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.0.path().display())
    }
}

/// A documented `sh` block, as written. Each one reads its database URL at
/// a prompt (never on the command line): the tests answer it on stdin.
fn step(marker: &str) -> String {
    let text = block("DEPLOY.md", marker, "sh");
    assert!(
        text.contains("read -rs") && !text.contains("'postgres://"),
        "{marker}: the URL is read at a prompt, not written in the command: {text}"
    );
    text
}

fn shell(bin: &BinDir, script: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", script])
        .env_clear()
        .env("PATH", bin.path())
        .stdin(Stdio::piped());
    cmd
}

/// Starts `script`, answering its prompt with `url`.
fn start(cmd: &mut Command, url: &str) -> std::process::Child {
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{url}\n").as_bytes()).unwrap();
    child
}

fn run(bin: &BinDir, script: &str, url: &str) -> Output {
    let mut cmd = shell(bin, script);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    start(&mut cmd, url).wait_with_output().unwrap()
}

#[tokio::test]
async fn the_documented_first_deploy_answers_healthy() {
    let pg = Postgres::shared();
    let db = pg.create_database().await;
    let owner = pg.url(&db);
    let (health, worker) = (format!("health_{db}"), format!("worker_{db}"));
    let bin = BinDir::new();

    // 2. migrate, as the owner.
    let out = run(&bin, &step("<!-- first-deploy: migrate -->"), &owner);
    assert!(out.status.success(), "{out:?}");

    // 3. the roles, as written.
    let roles = [
        operations_sql("<!-- role: base -->"),
        operations_sql("<!-- role: workers -->"),
    ]
    .concat()
    .replace("meshhook_health", &health)
    .replace("meshhook_worker", &worker)
    .replace("<long random password>", "not-used-with-trust")
    .replace("database postgres", &format!("database {db}"));
    pg.execute(&db, &roles).await;
    let check = step("<!-- first-deploy: check -->");
    let health_url = crate::support::as_role(&owner, &health);

    // Before any heartbeat the check is unhealthy: the order matters.
    let out = run(&bin, &check, &health_url);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too_few_workers"),
        "{out:?}"
    );

    // 4. the sidecar, as the workers' role, until it is stopped.
    let sidecar = step("<!-- first-deploy: heartbeat -->");
    let mut heartbeat = crate::support::Running(start(
        shell(&bin, sidecar.trim())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        &crate::support::as_role(&owner, &worker),
    ));
    let written = until(Duration::from_secs(20), async || {
        let rows = pg
            .value(&db, "SELECT count(*) FROM monitoring.worker_heartbeats")
            .await
            .unwrap();
        if rows == "1" {
            Ok(())
        } else {
            Err(rows)
        }
    })
    .await;
    if written.is_err() {
        heartbeat.0.kill().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(heartbeat.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        panic!("the sidecar wrote no heartbeat: {stderr}");
    }

    // 5. the check the function will make: healthy.
    let out = run(&bin, &check, &health_url);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["details"]["workers"], "healthy", "{body}");

    // The sidecar stops on SIGTERM and takes its row with it.
    heartbeat.signal(15);
    let status = heartbeat.wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        pg.value(&db, "SELECT count(*) FROM monitoring.worker_heartbeats")
            .await
            .as_deref(),
        Some("0")
    );
}
