//! Throwaway PostgreSQL clusters for tests: real servers on free loopback
//! ports, started from a once-made template data directory (`initdb` runs
//! once per machine and Postgres version, then each cluster is a copy).
//!
//! Each server runs under a tiny `sh` watchdog whose stdin is a pipe from the
//! test process: when the test process ends — normally, by panic or killed —
//! the pipe closes and the watchdog stops the server, so no cluster outlives
//! its tests. When the tests run as root, servers run as the `postgres` user
//! (Postgres refuses root).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub struct Postgres {
    dir: PathBuf,
    port: u16,
    /// Extra `-c name=value` settings for the server.
    settings: Vec<String>,
    watchdog: std::sync::Mutex<Option<Child>>,
}

/// The `initdb`/`postgres` binaries: in `PG_BIN` when set (another major,
/// e.g. the PostgreSQL 17 that `scripts/provision.sh pg17` installs), else on
/// PATH, else Debian's `/usr/lib/postgresql/<version>/bin` (not on PATH by
/// default).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
            assert!(
                dir.join("initdb").is_file(),
                "PG_BIN={} holds no initdb",
                dir.display()
            );
            return dir;
        }
        if let Ok(path) = std::env::var("PATH") {
            for dir in std::env::split_paths(&path) {
                let initdb = dir.join("initdb");
                if initdb.is_file() {
                    let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                    return real.parent().unwrap().to_path_buf();
                }
            }
        }
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                    .collect()
            })
            .unwrap_or_default();
        versions.retain(|p| p.join("initdb").is_file());
        versions.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions
            .pop()
            .expect("PostgreSQL server binaries (initdb) not found: install postgresql")
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// uid/gid of the `postgres` OS user when running as root.
fn run_as() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("running as root needs a `postgres` OS user");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = run_as() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

pub(crate) fn chown_to_server_user(path: &Path) {
    if let Some((uid, gid)) = run_as() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown test directory");
    }
}

/// The template data directory, made once (concurrent makers race on a rename).
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let version = bin_dir()
            .parent()
            .and_then(|p| p.file_name())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pg".into());
        let uid = unsafe { libc::geteuid() };
        let root = std::env::temp_dir().join(format!("meshhook-health-pgtemplate-{uid}-{version}"));
        if root.join("data/PG_VERSION").is_file() {
            return root;
        }
        let staging = std::env::temp_dir().join(format!(
            "meshhook-health-pgtemplate-{uid}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        chown_to_server_user(&staging);
        let output = command(bin_dir().join("initdb"))
            .args([
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(staging.join("data"))
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if std::fs::rename(&staging, &root).is_err() {
            // Another process made it first.
            let _ = std::fs::remove_dir_all(&staging);
        }
        root
    })
}

/// A PostgreSQL program (e.g. `pgbench`) from the same installation as the
/// server the tests run. (`make bench` runs pgbench.)
#[allow(dead_code)]
pub fn program(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A loopback port nothing listens on now, and that this process has not
/// handed out before: the kernel may give a port just released to the next
/// `bind(0)`, and two tests starting servers at once (a test's server binds
/// only after its process started) would then share one.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// A cluster for this test alone (it may stop or freeze it).
    pub fn dedicated() -> Postgres {
        let pg = Self::prepare();
        pg.start();
        pg
    }

    /// A dedicated cluster with extra server settings (`name=value`).
    pub fn dedicated_with(settings: &[&str]) -> Postgres {
        let mut pg = Self::prepare();
        pg.settings.extend(settings.iter().map(|s| s.to_string()));
        pg.start();
        pg
    }

    /// A dedicated cluster that speaks TLS with `pki`'s server certificate.
    /// With `tls_only`, pg_hba accepts TCP connections only over TLS.
    pub fn dedicated_tls(pki: &super::tls::Pki, tls_only: bool) -> Postgres {
        let mut pg = Self::prepare();
        pg.serve_tls(pki);
        if tls_only {
            pg.hba("hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n");
        }
        pg.start();
        pg
    }

    /// A dedicated cluster as a hosted one is reached: TLS only, and SCRAM
    /// logins for the role `app` (password `app-password`).
    #[allow(dead_code)] // make bench
    pub async fn dedicated_tls_with_passwords(pki: &super::tls::Pki) -> Postgres {
        let mut pg = Self::prepare();
        pg.serve_tls(pki);
        pg.hba("hostssl all all 127.0.0.1/32 scram-sha-256\n");
        pg.start();
        pg.execute("postgres", "CREATE ROLE app LOGIN PASSWORD 'app-password'")
            .await;
        pg
    }

    /// Settings for TLS with `pki`'s server certificate.
    fn serve_tls(&mut self, pki: &super::tls::Pki) {
        let pg = self;
        let cert = pg.dir.join("server.crt");
        let key = pg.dir.join("server.key");
        std::fs::write(&cert, &pki.server_cert_pem).unwrap();
        std::fs::write(&key, &pki.server_key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown_to_server_user(&cert);
        chown_to_server_user(&key);
        pg.settings.extend([
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ]);
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`), started: it
    /// answers reads and refuses writes, like a read replica.
    ///
    /// `None`, said as a skip, when the server binaries in use have no
    /// `pg_basebackup` (the npm package's PostgreSQL 17 ships only
    /// `initdb`, `pg_ctl` and `postgres`) — another major's would refuse it.
    pub fn standby_of(primary: &Postgres, test: &str) -> Option<Postgres> {
        if !bin_dir().join("pg_basebackup").is_file() {
            super::skip(
                test,
                &format!("{} has no pg_basebackup of its major", bin_dir().display()),
            );
            return None;
        }
        let pg = Self::unstarted();
        let dir = &pg.dir;
        let output = command(bin_dir().join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-X", "stream", "-R", "--no-sync", "-D"])
            .arg(dir.join("data"))
            .output()
            .expect("run pg_basebackup");
        assert!(
            output.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        pg.start();
        Some(pg)
    }

    /// A dedicated cluster where TCP logins need a password (SCRAM), as in
    /// production; role `app` has password `app-password`.
    pub async fn dedicated_with_passwords() -> Postgres {
        let mut pg = Self::prepare();
        pg.hba("host all all 127.0.0.1/32 scram-sha-256\n");
        pg.start();
        pg.execute("postgres", "CREATE ROLE app LOGIN PASSWORD 'app-password'")
            .await;
        pg
    }

    /// Replaces the TCP rules (Unix-socket logins stay trusted for setup).
    fn hba(&mut self, tcp_rules: &str) {
        let hba = self.dir.join("pg_hba.conf");
        std::fs::write(&hba, format!("local all all trust\n{tcp_rules}")).unwrap();
        chown_to_server_user(&hba);
        self.settings.push(format!("hba_file={}", hba.display()));
    }

    /// A cluster on a free port whose directory holds no data yet.
    fn unstarted() -> Postgres {
        let dir = std::env::temp_dir().join(format!(
            "meshhook-health-pg-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        chown_to_server_user(&dir);
        Postgres {
            dir,
            port: free_port(),
            settings: Vec::new(),
            watchdog: std::sync::Mutex::new(None),
        }
    }

    /// A cluster copied from the template data directory, not started.
    fn prepare() -> Postgres {
        let pg = Self::unstarted();
        let status = command("cp")
            .arg("-a")
            .arg(template().join("data"))
            .arg(pg.dir.join("data"))
            .status()
            .expect("copy template cluster");
        assert!(status.success(), "copying the template cluster failed");
        pg
    }

    /// One cluster for every test of this process that does not stop it.
    /// Tests isolate themselves with [`Postgres::create_database`].
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| {
            let pg = Postgres::dedicated();
            std::fs::write(pg.dir.join("remove-on-exit"), b"").unwrap();
            pg
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Starts (or restarts after [`Postgres::stop`]) the server and waits
    /// until it accepts connections.
    pub fn start(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        chown_to_server_user(&self.dir.join("server.log"));
        let log_before = log.metadata().map(|m| m.len() as usize).unwrap_or(0);
        // The watchdog stops the server when our end of its stdin closes.
        // A shared cluster also removes its directory once the server is gone.
        let script = r#"exec 3<&0; "$0" "$@" & pid=$!; { read -r _ <&3; kill -CONT $pid 2>/dev/null; kill -QUIT $pid 2>/dev/null; } & wait $pid; if [ -e "$PGTEST_DIR/remove-on-exit" ]; then rm -rf "$PGTEST_DIR"; fi"#;
        let child = command("sh")
            .arg("-c")
            .arg(script)
            .arg(bin_dir().join("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=100", "-c", "shared_buffers=16MB"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .env("PGTEST_DIR", &self.dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        *self.watchdog.lock().unwrap() = Some(child);
        // pg_isready where the binaries have it; the npm package's
        // PostgreSQL 17 has none: then the server's own word in this
        // start's part of its log.
        let pg_isready = bin_dir().join("pg_isready");
        super::wait::eventually_blocking("postgres started", Duration::from_secs(30), || {
            let ready = if pg_isready.is_file() {
                command(&pg_isready)
                    .args([
                        "-q",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &self.port.to_string(),
                        "-U",
                        "postgres",
                    ])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            } else {
                std::fs::read(self.dir.join("server.log")).is_ok_and(|log| {
                    String::from_utf8_lossy(log.get(log_before..).unwrap_or_default())
                        .contains("ready to accept")
                })
            };
            if ready {
                Ok(())
            } else {
                Err(std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default())
            }
        });
    }

    fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The postmaster and its backends.
    fn server_pids(&self) -> Vec<i32> {
        let Some(master) = self.postmaster_pid() else {
            return Vec::new();
        };
        let mut pids = vec![master];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command name: state, ppid, …
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let ppid = after
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(master) {
                pids.push(pid);
            }
        }
        pids
    }

    fn signal_all(&self, signal: i32) {
        for pid in self.server_pids() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Stops the server (fast shutdown: clients are disconnected) and waits
    /// until it has exited.
    pub fn stop(&self) {
        self.signal_all(libc::SIGCONT);
        if let Some(pid) = self.postmaster_pid() {
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        if let Some(mut child) = self.watchdog.lock().unwrap().take() {
            // `Child::wait` would close stdin first, and that tells the
            // watchdog to stop the server at once: hold it until the fast
            // shutdown has finished.
            let stdin = child.stdin.take();
            let _ = child.wait();
            drop(stdin);
        }
        let pid_file = self.dir.join("data/postmaster.pid");
        let _ = super::wait::until_blocking(Duration::from_secs(10), || {
            if pid_file.exists() {
                Err(())
            } else {
                Ok(())
            }
        });
    }

    /// Freezes the server (SIGSTOP on the postmaster and its backends): TCP
    /// still accepts, nothing answers.
    pub fn freeze(&self) {
        self.signal_all(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal_all(libc::SIGCONT);
    }

    /// Runs SQL as the superuser on database `db` (over the Unix socket, so
    /// it works whatever the TCP rules are).
    pub async fn execute(&self, db: &str, sql: &str) {
        let (client, connection) = self
            .admin_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to test postgres");
        let task = tokio::spawn(connection);
        client.batch_execute(sql).await.expect("run test SQL");
        drop(client);
        let _ = task.await;
    }

    /// A fresh, empty database on this cluster; returns its name.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        self.execute("postgres", &format!("CREATE DATABASE {name}"))
            .await;
        name
    }

    fn admin_config(&self, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user("postgres")
            .dbname(db);
        config
    }

    /// The first column of the first row of `sql` run on database `db`, as text.
    pub async fn value(&self, db: &str, sql: &str) -> Option<String> {
        let (client, connection) = self
            .admin_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        let rows = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = task.await;
        rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
    }

    /// Connections whose application_name is meshhook-health.
    pub async fn connections_of_health(&self) -> i64 {
        self.value(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'meshhook-health'",
        )
        .await
        .unwrap()
        .parse()
        .unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.signal_all(libc::SIGCONT);
        if let Some(mut child) = self.watchdog.lock().unwrap().take() {
            // Closing the pipe tells the watchdog to stop the server.
            drop(child.stdin.take());
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
