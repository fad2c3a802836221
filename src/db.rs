//! The Postgres side: connection settings (with libpq's `sslmode` meanings),
//! TLS, the connection pool, and [`Session`], which lets the checks of one
//! evaluation share one pooled connection.
//!
//! Two facts shape this module:
//! - Transaction-mode poolers (Supavisor on 6543, PgBouncer) reject named
//!   prepared statements, so everything here uses the simple query protocol.
//! - A Lambda container is frozen between invocations; its pooled connection
//!   may have died meanwhile. A query that fails because the connection is
//!   closed is retried once on a fresh connection, so a stale connection is
//!   never reported as a database outage.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::env::{ConfigError, Source};
use crate::outcome::Reason;
pub use crate::tls::SslMode;

/// How long a connection attempt outside a health evaluation (warm-up, CLI
/// commands) may take when the URL sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection settings read from `DATABASE_URL`.
#[derive(Clone)]
pub struct DbConfig {
    pg: tokio_postgres::Config,
    ssl_mode: SslMode,
    /// Trust anchors for verify-ca / verify-full, read at start-up.
    roots: Option<Arc<rustls::RootCertStore>>,
    pool_max: usize,
}

impl std::fmt::Debug for DbConfig {
    // Hosts, users and passwords stay out of every Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("ssl_mode", &self.ssl_mode)
            .field("pool_max", &self.pool_max)
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    /// Reads `DATABASE_URL` (and `PGSSLROOTCERT`, `DATABASE_POOL_MAX`).
    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let pool_max = crate::env::number(env, "DATABASE_POOL_MAX", 1, 1, 100)? as usize;
        let Some(url) = env.get("DATABASE_URL") else {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "is required when the database or workers component is enabled (or set DATABASE_SECRET_ID)",
            ));
        };
        Self::parse(&url, env.get("PGSSLROOTCERT"), pool_max)
    }

    /// As [`DbConfig::from_source`], reading the connection from Secrets
    /// Manager when `DATABASE_SECRET_ID` stands in for `DATABASE_URL`.
    pub async fn load(env: &dyn Source) -> Result<Self, ConfigError> {
        Self::from_source(&crate::secrets::resolve(env).await?)
    }

    /// Parses a URL or key=value connection string. `sslmode` and
    /// `sslrootcert` are taken out first: tokio-postgres knows neither the
    /// verify modes nor root certificates, and TLS is ours to set up.
    pub fn parse(
        raw: &str,
        env_root_cert: Option<String>,
        pool_max: usize,
    ) -> Result<Self, ConfigError> {
        let split = split_tls_params(raw.trim())?;
        let mut pg: tokio_postgres::Config =
            split.rest.parse().map_err(|e: tokio_postgres::Error| {
                // tokio-postgres' parse errors name an option, never its value.
                ConfigError::new(
                    "DATABASE_URL",
                    format!("not a valid Postgres URL or key=value string ({e})"),
                )
            })?;
        if pg.get_hosts().is_empty() {
            return Err(ConfigError::new("DATABASE_URL", "names no host"));
        }
        if pg.get_user().is_none() {
            return Err(ConfigError::new("DATABASE_URL", "names no user"));
        }
        if pg.get_options().is_some() {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "the `options` parameter is not supported: transaction poolers reject it",
            ));
        }
        // The name operators look for in pg_stat_activity, whatever the URL says.
        pg.application_name("meshhook-health");
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let ssl_mode = match split.sslmode.as_deref() {
            None => SslMode::Prefer,
            Some(v) => SslMode::parse(v).ok_or_else(|| {
                ConfigError::new(
                    "DATABASE_URL",
                    "sslmode must be one of disable, prefer, require, verify-ca, verify-full",
                )
            })?,
        };
        pg.ssl_mode(match ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let roots = match ssl_mode {
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let (variable, path) = match (split.sslrootcert, env_root_cert) {
                    (Some(p), _) => ("DATABASE_URL", p),
                    (None, Some(p)) => ("PGSSLROOTCERT", p),
                    (None, None) => {
                        return Err(ConfigError::new(
                            "DATABASE_URL",
                            "sslmode=verify-ca/verify-full needs sslrootcert (or PGSSLROOTCERT) naming a PEM file",
                        ))
                    }
                };
                Some(Arc::new(load_roots(variable, PathBuf::from(path))?))
            }
            _ => None,
        };
        Ok(Self {
            pg,
            ssl_mode,
            roots,
            pool_max,
        })
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.pg
            .get_password()
            .and_then(|p| std::str::from_utf8(p).ok())
    }
}

fn load_roots(variable: &'static str, path: PathBuf) -> Result<rustls::RootCertStore, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let unreadable = || ConfigError::new(variable, "sslrootcert is not a readable PEM file");
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path).map_err(|_| unreadable())? {
        let cert = cert.map_err(|_| unreadable())?;
        store.add(cert).map_err(|_| {
            ConfigError::new(
                variable,
                "sslrootcert holds a certificate that is not a valid CA",
            )
        })?;
    }
    if store.is_empty() {
        return Err(ConfigError::new(
            variable,
            "sslrootcert holds no certificate",
        ));
    }
    Ok(store)
}

struct TlsParams {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Removes `sslmode` and `sslrootcert` from a URL's query or a key=value
/// string, returning the rest unchanged.
fn split_tls_params(raw: &str) -> Result<TlsParams, ConfigError> {
    let mut out = TlsParams {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let is_url = raw.starts_with("postgres://") || raw.starts_with("postgresql://");
    if is_url {
        let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = || {
                percent_decode(v).ok_or_else(|| {
                    ConfigError::new("DATABASE_URL", "bad percent-encoding in a parameter")
                })
            };
            match k {
                "sslmode" => out.sslmode = Some(decoded()?),
                "sslrootcert" => out.sslrootcert = Some(decoded()?),
                _ => kept.push(pair),
            }
        }
        out.rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok(out);
    }

    // key=value form: values may be 'quoted' with backslash escapes.
    let bad = || {
        ConfigError::new(
            "DATABASE_URL",
            "not a valid Postgres URL or key=value string",
        )
    };
    let mut kept: Vec<&str> = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &raw[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() || bytes[i] != b'=' {
            return Err(bad());
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value: Vec<u8> = Vec::new();
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(bad()),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        match key {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => kept.push(&raw[start..i]),
        }
    }
    out.rest = kept.join(" ");
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A database failure, already classified for the report.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    pub reason: Reason,
    pub message: String,
}

impl From<&tokio_postgres::Error> for DbError {
    fn from(e: &tokio_postgres::Error) -> Self {
        Self {
            reason: classify(e),
            message: error_chain(e),
        }
    }
}

impl DbError {
    fn from_pool(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Self::from(&e),
            deadpool_postgres::PoolError::Timeout(_) => Self {
                reason: Reason::Timeout,
                message: "timed out waiting for a pooled connection".into(),
            },
            other => Self {
                reason: Reason::Unreachable,
                message: other.to_string(),
            },
        }
    }
}

/// Joins an error and its sources into one line, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Maps a tokio-postgres error to the reason vocabulary.
fn classify(e: &tokio_postgres::Error) -> Reason {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return match code {
            "42P01" | "3F000" => Reason::SchemaMissing,
            // Login refused: bad password, no such role, no such database.
            c if c.starts_with("28") || c == "3D000" => Reason::Auth,
            // Shutting down, starting up, too many connections.
            c if c.starts_with("57P") || c == "53300" => Reason::Unreachable,
            _ => Reason::QueryFailed,
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return Reason::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    return Reason::Tls;
                }
            }
            return if io.kind() == std::io::ErrorKind::TimedOut {
                Reason::Timeout
            } else {
                Reason::Unreachable
            };
        }
        source = s.source();
    }
    let text = e.to_string();
    if text.contains("TLS") {
        Reason::Tls
    } else if text.contains("timeout") || text.contains("timed out") {
        Reason::Timeout
    } else if e.is_closed() {
        Reason::Unreachable
    } else {
        Reason::QueryFailed
    }
}

/// The process's connection pool (at most `DATABASE_POOL_MAX` connections,
/// kept across invocations).
#[derive(Clone)]
pub struct Database {
    pool: Pool,
}

impl Database {
    /// Builds the pool without connecting.
    pub fn new(config: &DbConfig) -> Self {
        let manager_config = ManagerConfig {
            // `is_closed` only: a round trip on every checkout would double
            // the cost of an evaluation; dead connections are caught by the
            // retry in `Session::simple_query` instead.
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.ssl_mode {
            SslMode::Disable => Manager::from_config(config.pg.clone(), NoTls, manager_config),
            mode => Manager::from_config(
                config.pg.clone(),
                crate::tls::postgres_connector(mode, config.roots.clone()),
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_max)
            .runtime(Runtime::Tokio1)
            .build()
            // Infallible: `build` fails only when a timeout is set without a
            // runtime, and the runtime is set just above.
            .expect("pool with a runtime");
        Self { pool }
    }

    /// Opens the first connection in the background, so that start-up does
    /// not wait for it and the first request usually finds it ready.
    pub fn warm_up(&self) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, pool.get()).await {
                Ok(Ok(_returned_to_pool)) => {
                    tracing::debug!("database connection opened ahead of use")
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %DbError::from_pool(e), "early database connection failed")
                }
                Err(_) => tracing::debug!("early database connection timed out"),
            }
        });
    }

    /// One connection for a CLI command (heartbeat, migrate).
    pub async fn connection(&self) -> Result<Object, DbError> {
        self.pool.get().await.map_err(DbError::from_pool)
    }

    /// Connections this process holds now (for tests and logs).
    pub fn open_connections(&self) -> usize {
        self.pool.status().size
    }

    pub fn session(&self) -> Session<'_> {
        Session {
            pool: &self.pool,
            slot: tokio::sync::Mutex::new(Slot::default()),
        }
    }
}

/// One evaluation's use of the database: the checks running concurrently in
/// it share one pooled connection, so their queries are pipelined on it and
/// an evaluation costs one round trip, not one per check.
pub struct Session<'a> {
    pool: &'a Pool,
    slot: tokio::sync::Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    lease: Option<Arc<Lease>>,
}

/// A pooled connection in use by a session.
struct Lease {
    object: Option<Object>,
    /// Set when a query was abandoned mid-flight (deadline): the connection
    /// may still be busy answering it, so it must not go back to the pool.
    abandoned: AtomicBool,
}

impl Lease {
    fn client(&self) -> &tokio_postgres::Client {
        // Infallible: `object` is only taken in `drop`.
        self.object
            .as_ref()
            .expect("lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.abandoned.load(Ordering::Relaxed) {
            if let Some(object) = self.object.take() {
                // Detach from the pool; dropping the client closes it.
                drop(Object::take(object));
            }
        }
    }
}

/// Marks its lease abandoned unless the query it guards completes.
struct InFlight<'a> {
    lease: &'a Lease,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lease.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl Session<'_> {
    /// The session's connection; a new one when `stale` names the generation
    /// the caller saw fail, or when the current one is closed.
    async fn lease(&self, stale: Option<u64>) -> Result<(u64, Arc<Lease>), DbError> {
        let mut slot = self.slot.lock().await;
        if let Some(lease) = &slot.lease {
            if stale != Some(slot.generation) && !lease.client().is_closed() {
                return Ok((slot.generation, lease.clone()));
            }
        }
        slot.lease = None;
        let object = self.pool.get().await.map_err(DbError::from_pool)?;
        slot.generation += 1;
        let lease = Arc::new(Lease {
            object: Some(object),
            abandoned: AtomicBool::new(false),
        });
        slot.lease = Some(lease.clone());
        Ok((slot.generation, lease))
    }

    /// Runs one statement with the simple query protocol (pooler-safe),
    /// retrying once on a fresh connection if the connection turned out dead.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, DbError> {
        let mut stale = None;
        loop {
            let (generation, lease) = self.lease(stale).await?;
            let mut guard = InFlight {
                lease: &lease,
                done: false,
            };
            let result = lease.client().simple_query(sql).await;
            guard.done = true;
            drop(guard);
            match result {
                Ok(messages) => return Ok(messages),
                Err(e) if stale.is_none() && (e.is_closed() || lease.client().is_closed()) => {
                    tracing::debug!(error = %error_chain(&e), "pooled connection was dead; retrying on a new one");
                    stale = Some(generation);
                }
                Err(e) => return Err(DbError::from(&e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<DbConfig, ConfigError> {
        DbConfig::parse(raw, None, 1)
    }

    #[test]
    fn url_and_key_value_forms_keep_every_other_setting() {
        let url = parse("postgresql://app:p%40ss@db.example.com:6543/meshhook?sslmode=require&connect_timeout=3").unwrap();
        assert_eq!(url.ssl_mode(), SslMode::Require);
        assert_eq!(url.pg.get_ports(), [6543]);
        assert_eq!(url.pg.get_dbname(), Some("meshhook"));
        assert_eq!(url.password(), Some("p@ss"));
        assert_eq!(url.pg.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(url.pg.get_application_name(), Some("meshhook-health"));

        let kv = parse("host=db port=5432 user=app password='a b\\'c' dbname=x sslmode=disable")
            .unwrap();
        assert_eq!(kv.ssl_mode(), SslMode::Disable);
        assert_eq!(kv.password(), Some("a b'c"));
        assert_eq!(kv.pg.get_dbname(), Some("x"));
        assert_eq!(kv.pg.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
    }

    #[test]
    fn sslmode_defaults_to_prefer_like_libpq() {
        assert_eq!(
            parse("postgres://app@db/x").unwrap().ssl_mode(),
            SslMode::Prefer
        );
        assert_eq!(
            parse("host=db user=app").unwrap().ssl_mode(),
            SslMode::Prefer
        );
    }

    #[test]
    fn application_name_is_ours_whatever_the_url_says() {
        let config = parse("postgres://app@db/x?application_name=other").unwrap();
        assert_eq!(config.pg.get_application_name(), Some("meshhook-health"));
    }

    #[test]
    fn verify_modes_need_a_readable_root_certificate() {
        let error = parse("postgres://app@db/x?sslmode=verify-full").unwrap_err();
        assert!(error.problem.contains("sslrootcert"), "{error}");
        let error = DbConfig::parse(
            "postgres://app@db/x?sslmode=verify-ca",
            Some("/nonexistent.pem".into()),
            1,
        )
        .unwrap_err();
        assert_eq!(error.variable, "PGSSLROOTCERT");
    }

    #[test]
    fn options_and_missing_user_are_refused() {
        assert!(parse("postgres://app@db/x?options=-c%20statement_timeout%3D1").is_err());
        assert!(parse("host=db dbname=x").is_err());
    }

    #[test]
    fn split_leaves_other_parameters_untouched() {
        let split = split_tls_params(
            "postgres://u@h/d?a=1&sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem&b=2",
        )
        .unwrap();
        assert_eq!(split.rest, "postgres://u@h/d?a=1&b=2");
        assert_eq!(split.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        let split =
            split_tls_params("host=h sslrootcert='/a b/ca.pem' user=u sslmode = require").unwrap();
        assert_eq!(split.rest, "host=h user=u");
        assert_eq!(split.sslrootcert.as_deref(), Some("/a b/ca.pem"));
        assert_eq!(split.sslmode.as_deref(), Some("require"));
    }
}
