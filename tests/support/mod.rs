//! Shared test helpers: real Postgres clusters ([`postgres`]), a Supabase
//! stand-in ([`supabase`]), and [`Stack`], a healthy MeshHook for one test
//! whose settings the test then bends.

pub mod docs;
pub mod emf;
pub mod latency;
pub mod meshhook;
pub mod meshhook_app;
pub mod net;
pub mod pgbouncer;
pub mod pgmq;
pub mod postgres;
pub mod proxy;
pub mod runtime_api;
pub mod supabase;
pub mod template;
pub mod tenancy;
pub mod tls;
pub mod wait;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode};
use meshhook_health::config::Config;
use meshhook_health::router::{respond, Inbound};
use meshhook_health::App;

pub use postgres::Postgres;
pub use supabase::Supabase;

pub const DETAILS_TOKEN: &str = "details-token-7d1e5b";

/// How far past its deadline an answer may leave in these tests. The
/// documented bound is "the deadline plus a few ms", and the evaluator's
/// own tests prove it exactly under a paused clock; here, with real
/// processes on a busy 2-core machine running debug builds, a scheduler
/// may delay any answer by a few hundred ms. What these tests prove is
/// that a hung or broken dependency never holds an answer back (a hang
/// would take seconds to minutes), not how fast the machine is.
pub const SLACK: Duration = Duration::from_millis(400);

/// A healthy MeshHook for one test: a database (on the shared cluster, or a
/// dedicated one) with the heartbeat table and one fresh heartbeat, and a
/// Supabase stand-in. `env` is the configuration the app will be built from.
pub struct Stack {
    pub db: String,
    pub supabase: Supabase,
    pub env: HashMap<String, String>,
    dedicated: Option<Postgres>,
}

impl Stack {
    pub async fn new() -> Stack {
        Self::build(None).await
    }

    /// With a cluster of its own, for tests that stop or freeze it.
    pub async fn dedicated() -> Stack {
        Self::build(Some(Postgres::dedicated())).await
    }

    /// On a cluster the test set up itself.
    pub async fn on(pg: Postgres) -> Stack {
        Self::build(Some(pg)).await
    }

    async fn build(dedicated: Option<Postgres>) -> Stack {
        let supabase = Supabase::start().await;
        let (pg, db) = match &dedicated {
            Some(pg) => (pg, "postgres".to_owned()),
            None => {
                let pg = Postgres::shared();
                let db = pg.create_database().await;
                (pg, db)
            }
        };
        pg.execute(&db, meshhook_health::migrate::MIGRATION).await;
        pg.execute(
            &db,
            "INSERT INTO monitoring.worker_heartbeats (worker_id, kind) VALUES ('orchestrator-1', 'orchestrator')",
        )
        .await;
        let mut env = HashMap::new();
        for (k, v) in [
            ("DATABASE_URL", pg.url(&db)),
            ("SUPABASE_URL", supabase.url()),
            ("SUPABASE_ANON_KEY", supabase::ANON_KEY.to_owned()),
            ("HEALTH_DETAILS_TOKEN", DETAILS_TOKEN.to_owned()),
            ("HEALTH_TIMEOUT_MS", "2000".to_owned()),
            ("HEALTH_CACHE_TTL_MS", "0".to_owned()),
            ("MESHHOOK_VERSION", "1.4.2".to_owned()),
        ] {
            env.insert(k.to_owned(), v);
        }
        Stack {
            db,
            supabase,
            env,
            dedicated,
        }
    }

    pub fn pg(&self) -> &Postgres {
        self.dedicated
            .as_ref()
            .unwrap_or_else(|| Postgres::shared())
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Routes the app's database connections through a [`proxy::Proxy`]
    /// in front of the stack's cluster.
    pub async fn behind_proxy(&mut self) -> proxy::Proxy {
        let proxy = proxy::Proxy::start(self.pg().port()).await;
        let url = self.env["DATABASE_URL"].replace(
            &format!(":{}/", self.pg().port()),
            &format!(":{}/", proxy.port()),
        );
        self.set("DATABASE_URL", &url);
        proxy
    }

    pub fn unset(&mut self, key: &str) -> &mut Self {
        self.env.remove(key);
        self
    }

    /// Runs SQL on the stack's database.
    pub async fn sql(&self, sql: &str) {
        self.pg().execute(&self.db, sql).await;
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.env["HEALTH_TIMEOUT_MS"].parse().unwrap())
    }

    /// The app as the binary would build it from this environment.
    pub fn app(&self) -> Arc<App> {
        let config = Config::from_source(&self.env).expect("valid test configuration");
        let app = Arc::new(App::new(config).expect("app builds"));
        app.warm_up();
        app
    }
}

/// `url` (a test cluster's, which names the `postgres` user) with its user
/// replaced by `role`.
pub fn as_role(url: &str, role: &str) -> String {
    let changed = url.replacen("postgres@", &format!("{role}@"), 1);
    assert_ne!(changed, url, "the URL names its user");
    changed
}

/// The real binary in `serve` mode on a free loopback port, built from
/// `env` alone; returns the process and its `/health` URL.
pub fn serve_process(env: &HashMap<String, String>) -> (Running, String) {
    let port = postgres::free_port();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_meshhook-health"));
    let listen = format!("127.0.0.1:{port}");
    let running = serve_process_from(binary, env, &["serve", "--listen", &listen], port);
    (running, format!("http://127.0.0.1:{port}/health"))
}

/// `binary` with `args` and `env` alone, once it listens on `port`.
pub fn serve_process_from(
    binary: &std::path::Path,
    env: &HashMap<String, String>,
    args: &[&str],
    port: u16,
) -> Running {
    let child = std::process::Command::new(binary)
        .env_clear()
        .envs(env)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    Running(child)
}

/// The first answer of `url` (status and JSON body), asked until something
/// answers or `within` passes.
pub async fn wait_for_health(url: &str, within: Duration) -> (u16, serde_json::Value) {
    let client = http_client();
    let response = wait::eventually(&format!("an answer from {url}"), within, async || {
        client.get(url).send().await
    })
    .await;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// Waits until `app` answers 200 (a first connection may outlast a short
/// deadline on a busy machine); panics after 20 s.
pub async fn until_healthy(app: &App) {
    wait::eventually("healthy", Duration::from_secs(20), async || {
        let answer = get(app, "/health").await;
        match answer.status {
            StatusCode::OK => Ok(()),
            _ => Err(answer.text),
        }
    })
    .await;
}

/// One answer, decoded.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
    pub elapsed: Duration,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }
}

/// A request through the shared HTTP handler (what both transports call).
pub async fn call(app: &App, method: Method, target: &str, token: Option<&str>) -> Answer {
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let authorization = token.map(|t| HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
    let started = Instant::now();
    let response = respond(
        app,
        Inbound {
            method: &method,
            path,
            query,
            authorization: authorization.as_ref(),
            accept: None,
            stage: None,
        },
    )
    .await;
    let elapsed = started.elapsed();
    let (parts, text) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        text,
        elapsed,
    }
}

pub async fn get(app: &App, target: &str) -> Answer {
    call(app, Method::GET, target, None).await
}

/// `GET /health?verbose=1` with the details token.
pub async fn verbose(app: &App) -> Answer {
    call(app, Method::GET, "/health?verbose=1", Some(DETAILS_TOKEN)).await
}

/// A plain-HTTP client for tests. reqwest's rustls backend needs a process
/// crypto provider when the app's own feature set (`rustls-no-provider`) is
/// in force; the app itself passes its TLS config explicitly instead.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A child process that is killed if the test ends early (panics), so no
/// server outlives its test.
pub struct Running(pub std::process::Child);

impl Running {
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(self.0.id() as i32, signal);
        }
    }

    /// `signal` to the process group the process leads (spawned with
    /// `process_group(0)`): a script and everything it started.
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(-(self.0.id() as i32), signal);
        }
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().unwrap()
    }

    /// Kills the process and returns everything it wrote to its piped stdout.
    pub fn kill_and_read_stdout(mut self) -> String {
        self.0.kill().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(self.0.stdout.as_mut().expect("stdout piped"), &mut stdout)
            .unwrap();
        stdout
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Says that `test` could not run because a tool is missing, on stderr and
/// in the file `make test` names in `MESHHOOK_HEALTH_SKIPPED`: its summary
/// counts it as skipped, never as passed, and CI (which provisions every
/// tool) fails on it.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("MESHHOOK_HEALTH_SKIPPED") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "{test}: {why}").unwrap();
    }
}

/// A fresh directory under the system's temporary one, named after `what`,
/// removed when dropped.
pub fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("meshhook-health-{what}-"))
        .tempdir()
        .unwrap()
}

/// Runs `serve` mode in this process on a free port; returns its address.
pub async fn spawn_serve(app: Arc<App>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = meshhook_health::serve::serve(app, listener, 1_024, std::future::pending()).await;
    });
    (addr, task)
}

/// Waits until something listens on 127.0.0.1:`port` (10 s at most).
pub fn wait_for_port(port: u16) {
    wait::eventually_blocking(
        &format!("a listener on port {port}"),
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)),
    );
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The first of `candidates` (paths, or names on `PATH`) that runs, with
/// `args` and its output discarded, until the test drops it.
pub fn daemon(candidates: &[&str], args: &[String]) -> Running {
    let program = installed(candidates);
    let child = std::process::Command::new(&program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program} (scripts/provision.sh installs it): {e}"));
    Running(child)
}

/// The first of `candidates` (paths, or names on `PATH`) that is installed.
pub fn installed(candidates: &[&str]) -> String {
    candidates
        .iter()
        .find(|c| {
            std::path::Path::new(c).is_file()
                || std::env::var_os("PATH").is_some_and(|path| {
                    std::env::split_paths(&path).any(|dir| dir.join(c).is_file())
                })
        })
        .map(|c| (*c).to_owned())
        .unwrap_or_else(|| panic!("none of {candidates:?} is installed: run scripts/provision.sh"))
}

/// `method` on `/metrics` of the server at `addr`, with a bearer `token`
/// and an `Accept` header when given.
pub async fn metrics_request(
    addr: std::net::SocketAddr,
    method: Method,
    token: Option<&str>,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = http_client().request(method, format!("http://{addr}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}
