//! Environment → typed [`Config`].
//!
//! Every value is read and checked once, at start-up. An error names the
//! variable at fault and never repeats a secret's value, so it can be shown to
//! an operator (and logged) as it is.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::checks::Component;
use crate::db::DbConfig;

/// A configuration problem; the message names the variable and is safe to print.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Where configuration values come from: the process environment in
/// production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment. Empty values count as unset, as operators expect
/// from `FOO=` in a template.
pub struct Environment;

impl Source for Environment {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

/// A value that must never be printed: `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Everything the health evaluation and the transports need.
#[derive(Debug, Clone)]
pub struct Config {
    pub components: Vec<Component>,
    pub database: Option<DbConfig>,
    pub supabase: Option<SupabaseConfig>,
    pub workers: WorkerThresholds,
    pub timeout: Duration,
    pub cache_ttl: Duration,
    pub noncritical: BTreeSet<Component>,
    pub unhealthy_status: u16,
    pub details_token: Option<Secret>,
    pub version: String,
    pub listen: SocketAddr,
    /// `HEALTH_METRICS_NAMESPACE`: where EMF metrics go.
    pub metrics_namespace: String,
    /// Print EMF metric lines per evaluation; set by Lambda mode, not the
    /// environment.
    pub emit_metrics: bool,
}

/// How the Supabase services are asked.
#[derive(Debug, Clone)]
pub enum SupabaseConfig {
    /// Each service's health route through the project gateway.
    Gateway {
        url: reqwest::Url,
        anon_key: Secret,
        services: Vec<GatewayService>,
    },
    /// One call to the Management API's project health endpoint.
    Management {
        api_url: reqwest::Url,
        access_token: Secret,
        project_ref: String,
        services: Vec<String>,
    },
}

/// Supabase services reachable through the project gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayService {
    Auth,
    Realtime,
    Rest,
    Storage,
}

impl GatewayService {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Realtime => "realtime",
            Self::Rest => "rest",
            Self::Storage => "storage",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Auth => "auth/v1/health",
            Self::Realtime => "realtime/v1/api/ping",
            Self::Rest => "rest/v1/",
            Self::Storage => "storage/v1/status",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Auth, Self::Realtime, Self::Rest, Self::Storage]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Service names the Management API's health endpoint knows.
const MANAGEMENT_SERVICES: &[&str] = &[
    "auth",
    "db",
    "db_postgres_user",
    "pooler",
    "realtime",
    "rest",
    "storage",
    "pg_bouncer",
];

/// How worker heartbeats are classified (CONTRACT §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerThresholds {
    pub stale_after_secs: u64,
    pub forget_after_secs: u64,
    pub min_alive: u64,
    pub min_alive_by_kind: Vec<(String, u64)>,
}

impl Default for WorkerThresholds {
    fn default() -> Self {
        Self {
            stale_after_secs: 60,
            forget_after_secs: 900,
            min_alive: 1,
            min_alive_by_kind: Vec::new(),
        }
    }
}

impl Config {
    /// As [`Config::from_source`], first reading the database connection
    /// from Secrets Manager when `DATABASE_SECRET_ID` stands in for
    /// `DATABASE_URL` and an enabled component needs the database.
    pub async fn load(env: &dyn Source) -> Result<Self, ConfigError> {
        if !needs_database(&components_from(env)?) {
            return Self::from_source(env);
        }
        Self::from_source(&crate::secrets::resolve(env).await?)
    }

    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let components = components_from(env)?;
        let noncritical = match env.get("HEALTH_NONCRITICAL") {
            None => BTreeSet::new(),
            Some(list) => parse_components("HEALTH_NONCRITICAL", &list, true)?
                .into_iter()
                .collect(),
        };
        let database = if needs_database(&components) {
            Some(DbConfig::from_source(env)?)
        } else {
            None
        };
        let supabase = if components.contains(&Component::Supabase) {
            Some(supabase_from(env)?)
        } else {
            None
        };
        let workers = workers_from(env)?;
        let timeout = Duration::from_millis(number(env, "HEALTH_TIMEOUT_MS", 150, 1, 60_000)?);
        let cache_ttl =
            Duration::from_millis(number(env, "HEALTH_CACHE_TTL_MS", 1000, 0, 3_600_000)?);
        let unhealthy_status = match env.get("HEALTH_UNHEALTHY_STATUS").as_deref().map(str::trim) {
            None | Some("500") => 500,
            Some("503") => 503,
            Some(_) => {
                return Err(ConfigError::new(
                    "HEALTH_UNHEALTHY_STATUS",
                    "must be 500 or 503",
                ))
            }
        };
        let listen = match env.get("HEALTH_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(addr) => parse_listen("HEALTH_LISTEN", &addr)?,
        };
        Ok(Self {
            components,
            database,
            supabase,
            workers,
            timeout,
            cache_ttl,
            noncritical,
            unhealthy_status,
            details_token: env.get("HEALTH_DETAILS_TOKEN").map(Secret::new),
            version: version(env),
            listen,
            metrics_namespace: env
                .get("HEALTH_METRICS_NAMESPACE")
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.to_owned()),
            emit_metrics: false,
        })
    }

    /// Every secret value the process knows, so that logs can redact them from
    /// error text that a library produced.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(db) = &self.database {
            out.extend(db.password().map(str::to_owned));
        }
        match &self.supabase {
            Some(SupabaseConfig::Gateway { anon_key, .. }) => {
                out.push(anon_key.expose().to_owned())
            }
            Some(SupabaseConfig::Management { access_token, .. }) => {
                out.push(access_token.expose().to_owned())
            }
            None => {}
        }
        out.extend(self.details_token.as_ref().map(|t| t.expose().to_owned()));
        out.retain(|s| !s.is_empty());
        out
    }
}

/// `HEALTH_COMPONENTS`, or every component.
fn components_from(env: &dyn Source) -> Result<Vec<Component>, ConfigError> {
    match env.get("HEALTH_COMPONENTS") {
        None => Ok(Component::ALL.to_vec()),
        Some(list) => parse_components("HEALTH_COMPONENTS", &list, false),
    }
}

/// Database and workers both need the database.
fn needs_database(components: &[Component]) -> bool {
    components
        .iter()
        .any(|c| matches!(c, Component::Database | Component::Workers))
}

/// The reported version: `MESHHOOK_VERSION`, or the crate's.
pub fn version(env: &dyn Source) -> String {
    env.get("MESHHOOK_VERSION")
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
}

/// Parses a listen address for `HEALTH_LISTEN` or `--listen`.
pub fn parse_listen(variable: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(variable, "expected an address such as 127.0.0.1:3000"))
}

fn parse_components(
    variable: &'static str,
    list: &str,
    allow_empty: bool,
) -> Result<Vec<Component>, ConfigError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let component = Component::parse(name).ok_or_else(|| {
            ConfigError::new(
                variable,
                format!("unknown component {name:?} (expected database, supabase or workers)"),
            )
        })?;
        if !out.contains(&component) {
            out.push(component);
        }
    }
    if out.is_empty() && !allow_empty {
        return Err(ConfigError::new(variable, "names no component"));
    }
    // Report in one fixed order whatever order the list used.
    out.sort();
    Ok(out)
}

/// Reads a whole number within `min..=max`, or `default` when unset.
pub(crate) fn number(
    env: &dyn Source,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = env.get(variable) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("expected a whole number from {min} to {max}"),
        )),
    }
}

fn workers_from(env: &dyn Source) -> Result<WorkerThresholds, ConfigError> {
    let stale_after_secs = number(env, "WORKER_STALE_AFTER_SECS", 60, 1, 86_400 * 30)?;
    let forget_after_secs = number(env, "WORKER_FORGET_AFTER_SECS", 900, 1, 86_400 * 365)?;
    if forget_after_secs < stale_after_secs {
        return Err(ConfigError::new(
            "WORKER_FORGET_AFTER_SECS",
            "must not be smaller than WORKER_STALE_AFTER_SECS",
        ));
    }
    let min_alive = number(env, "WORKER_MIN_ALIVE", 1, 0, 1_000_000)?;
    let mut min_alive_by_kind = Vec::new();
    if let Some(list) = env.get("WORKER_MIN_ALIVE_BY_KIND") {
        for entry in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(kind, n)| {
                let kind = kind.trim();
                let n = n.trim().parse::<u64>().ok()?;
                (!kind.is_empty()).then(|| (kind.to_owned(), n))
            });
            let Some(pair) = parsed else {
                return Err(ConfigError::new(
                    "WORKER_MIN_ALIVE_BY_KIND",
                    format!("expected kind=number pairs such as orchestrator=1,http-exec=2; got {entry:?}"),
                ));
            };
            min_alive_by_kind.push(pair);
        }
    }
    Ok(WorkerThresholds {
        stale_after_secs,
        forget_after_secs,
        min_alive,
        min_alive_by_kind,
    })
}

fn http_url(variable: &'static str, raw: &str) -> Result<reqwest::Url, ConfigError> {
    let mut url = reqwest::Url::parse(raw.trim())
        .map_err(|_| ConfigError::new(variable, "not a valid URL (expected https://…)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            variable,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if url.password().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            variable,
            "must not carry a user or password",
        ));
    }
    // A base that ends in '/' lets `join` append service paths to it.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    Ok(url)
}

fn supabase_from(env: &dyn Source) -> Result<SupabaseConfig, ConfigError> {
    let services_raw = env.get("SUPABASE_SERVICES");
    let service_names: Vec<String> = services_raw
        .as_deref()
        .unwrap_or("auth,realtime")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        });
    if service_names.is_empty() {
        return Err(ConfigError::new("SUPABASE_SERVICES", "names no service"));
    }

    let token = env.get("SUPABASE_ACCESS_TOKEN");
    let project_ref = env.get("SUPABASE_PROJECT_REF");
    if let (Some(token), Some(project_ref)) = (token, project_ref) {
        let project_ref = project_ref.trim().to_owned();
        if !project_ref.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(
                "SUPABASE_PROJECT_REF",
                "expected the project's reference id (letters and digits)",
            ));
        }
        for name in &service_names {
            if !MANAGEMENT_SERVICES.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    "SUPABASE_SERVICES",
                    format!(
                        "unknown service {name:?} (expected some of {})",
                        MANAGEMENT_SERVICES.join(", ")
                    ),
                ));
            }
        }
        let api_url = http_url(
            "SUPABASE_API_URL",
            env.get("SUPABASE_API_URL")
                .as_deref()
                .unwrap_or("https://api.supabase.com"),
        )?;
        return Ok(SupabaseConfig::Management {
            api_url,
            access_token: Secret::new(token.trim()),
            project_ref,
            services: service_names,
        });
    }

    let url = env.get("SUPABASE_URL").ok_or_else(|| {
        ConfigError::new(
            "SUPABASE_URL",
            "is required when the supabase component is enabled (or set SUPABASE_ACCESS_TOKEN and SUPABASE_PROJECT_REF)",
        )
    })?;
    let url = http_url("SUPABASE_URL", &url)?;
    let anon_key = env.get("SUPABASE_ANON_KEY").ok_or_else(|| {
        ConfigError::new(
            "SUPABASE_ANON_KEY",
            "is required together with SUPABASE_URL",
        )
    })?;
    if anon_key
        .trim()
        .chars()
        .any(|c| c.is_ascii_control() || !c.is_ascii())
    {
        return Err(ConfigError::new(
            "SUPABASE_ANON_KEY",
            "contains characters a header cannot carry",
        ));
    }
    let mut services = Vec::new();
    for name in &service_names {
        services.push(GatewayService::parse(name).ok_or_else(|| {
            ConfigError::new(
                "SUPABASE_SERVICES",
                format!(
                    "unknown service {name:?} (expected some of auth, realtime, rest, storage)"
                ),
            )
        })?);
    }
    Ok(SupabaseConfig::Gateway {
        url,
        anon_key: Secret::new(anon_key.trim()),
        services,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DB: (&str, &str) = (
        "DATABASE_URL",
        "postgres://app:pw-7731@db.internal:6543/postgres",
    );

    fn full() -> Vec<(&'static str, &'static str)> {
        vec![
            DB,
            ("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co"),
            ("SUPABASE_ANON_KEY", "sb_publishable_x"),
        ]
    }

    fn error_of(pairs: &[(&str, &str)]) -> ConfigError {
        Config::from_source(&env(pairs)).expect_err("configuration should be refused")
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::from_source(&env(&full())).unwrap();
        assert_eq!(config.components, Component::ALL);
        assert_eq!(config.timeout, Duration::from_millis(150));
        assert_eq!(config.cache_ttl, Duration::from_millis(1000));
        assert_eq!(config.unhealthy_status, 500);
        assert_eq!(config.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(config.workers, WorkerThresholds::default());
        assert!(config.noncritical.is_empty());
        match config.supabase.unwrap() {
            SupabaseConfig::Gateway { url, services, .. } => {
                assert_eq!(url.as_str(), "https://abcdefghijklmnopqrst.supabase.co/");
                assert_eq!(services, [GatewayService::Auth, GatewayService::Realtime]);
            }
            other => panic!("expected gateway mode, got {other:?}"),
        }
    }

    #[test]
    fn enabled_component_without_its_settings_names_the_variable() {
        assert_eq!(error_of(&[DB]).variable, "SUPABASE_URL");
        let mut no_key = full();
        no_key.retain(|(k, _)| *k != "SUPABASE_ANON_KEY");
        assert_eq!(error_of(&no_key).variable, "SUPABASE_ANON_KEY");
        assert_eq!(
            error_of(&[("HEALTH_COMPONENTS", "workers")]).variable,
            "DATABASE_URL"
        );
        let only_supabase = Config::from_source(&env(&[
            ("HEALTH_COMPONENTS", "supabase"),
            ("SUPABASE_URL", "https://x.supabase.co"),
            ("SUPABASE_ANON_KEY", "k"),
        ]))
        .unwrap();
        assert!(only_supabase.database.is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (key, value) in [
            ("HEALTH_TIMEOUT_MS", "abc"),
            ("HEALTH_TIMEOUT_MS", "0"),
            ("HEALTH_CACHE_TTL_MS", "-1"),
            ("HEALTH_COMPONENTS", "database,queue"),
            ("HEALTH_NONCRITICAL", "everything"),
            ("HEALTH_UNHEALTHY_STATUS", "404"),
            ("HEALTH_LISTEN", "3000"),
            ("WORKER_MIN_ALIVE", "one"),
            ("WORKER_MIN_ALIVE_BY_KIND", "orchestrator=x"),
            ("DATABASE_POOL_MAX", "0"),
            ("SUPABASE_URL", "ftp://x.supabase.co"),
            ("SUPABASE_SERVICES", "auth,db"),
        ] {
            let mut pairs = full();
            pairs.push((key, value));
            assert_eq!(error_of(&pairs).variable, key, "{key}={value}");
        }
        let mut pairs = full();
        pairs.extend([
            ("WORKER_STALE_AFTER_SECS", "120"),
            ("WORKER_FORGET_AFTER_SECS", "60"),
        ]);
        assert_eq!(error_of(&pairs).variable, "WORKER_FORGET_AFTER_SECS");
    }

    #[test]
    fn errors_never_echo_a_secret() {
        for url in [
            "postgres://app:pw-7731@[broken/postgres",
            "postgres://app:pw-7731@db/postgres?sslmode=sometimes",
            "postgres://app:pw-7731@db/postgres?options=-c%20search_path%3Dx",
            "host=db user=app password='pw-7731' sslmode=verify-full",
            "host=db user=app password=pw-7731 nonsense",
            "postgres://app:pw-7731@db/postgres?sslmode=verify-ca&sslrootcert=/nonexistent/pw-7731.pem",
        ] {
            let mut pairs = full();
            pairs[0] = ("DATABASE_URL", url);
            let error = error_of(&pairs);
            assert_eq!(error.variable, "DATABASE_URL", "{url}");
            assert!(!error.to_string().contains("pw-7731"), "{error}");
        }
        let config = Config::from_source(&env(&full())).unwrap();
        assert!(!format!("{config:?}").contains("pw-7731"));
        assert!(!format!("{config:?}").contains("db.internal"));
        assert!(!format!("{config:?}").contains("sb_publishable_x"));
    }

    #[test]
    fn secrets_are_collected_for_redaction() {
        let mut pairs = full();
        pairs.push(("HEALTH_DETAILS_TOKEN", "tok-1"));
        let secrets = Config::from_source(&env(&pairs)).unwrap().secrets();
        assert_eq!(secrets, ["pw-7731", "sb_publishable_x", "tok-1"]);
    }

    #[test]
    fn management_mode_needs_token_and_ref() {
        let mut pairs = full();
        pairs.extend([
            ("SUPABASE_ACCESS_TOKEN", "sbp_x"),
            ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
            ("SUPABASE_SERVICES", "auth,db,pooler"),
        ]);
        match Config::from_source(&env(&pairs)).unwrap().supabase.unwrap() {
            SupabaseConfig::Management {
                api_url, services, ..
            } => {
                assert_eq!(api_url.as_str(), "https://api.supabase.com/");
                assert_eq!(services, ["auth", "db", "pooler"]);
            }
            other => panic!("expected management mode, got {other:?}"),
        }
        pairs.push(("SUPABASE_PROJECT_REF", "../../etc"));
        assert_eq!(error_of(&pairs).variable, "SUPABASE_PROJECT_REF");
    }

    #[test]
    fn lists_and_thresholds_parse() {
        let mut pairs = full();
        pairs.extend([
            ("HEALTH_COMPONENTS", " workers , database,workers "),
            ("HEALTH_NONCRITICAL", "workers"),
            ("WORKER_MIN_ALIVE_BY_KIND", "orchestrator=1, http-exec=2"),
            ("HEALTH_UNHEALTHY_STATUS", "503"),
            ("MESHHOOK_VERSION", "1.4.2"),
        ]);
        let config = Config::from_source(&env(&pairs)).unwrap();
        assert_eq!(config.components, [Component::Database, Component::Workers]);
        assert!(config.supabase.is_none());
        assert!(config.noncritical.contains(&Component::Workers));
        assert_eq!(
            config.workers.min_alive_by_kind,
            [("orchestrator".to_owned(), 1), ("http-exec".to_owned(), 2)]
        );
        assert_eq!(config.unhealthy_status, 503);
        assert_eq!(config.version, "1.4.2");
    }
}
