//! Environment → typed [`Config`].
//!
//! Every value is read and checked once, at start-up: the settings shared by
//! every component here, each component's own through its definition in
//! [`crate::checks::REGISTRY`]. An error names the variable at fault and
//! never repeats a secret's value, so it can be shown to an operator (and
//! logged) as it is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::checks::REGISTRY;
use crate::component::{Component, Enabled, Settings};
use crate::db::DbConfig;
use crate::env::number;
use crate::env::{ConfigError, Secret, Source};

/// Everything the health evaluation and the transports need.
#[derive(Debug, Clone)]
pub struct Config {
    /// Enabled components, in registry order.
    pub components: Vec<ComponentConfig>,
    /// The connection, when an enabled component needs the database.
    pub database: Option<DbConfig>,
    pub timeout: Duration,
    pub cache_ttl: Duration,
    pub unhealthy_status: u16,
    pub details_token: Option<Secret>,
    /// `HEALTH_METRICS_TOKEN`: enables serve mode's `GET /metrics`.
    pub metrics_token: Option<Secret>,
    /// `MESHHOOK_VERSION`: the reported version when set; without it the
    /// workers' heartbeats tell it (`report::public_version`).
    pub meshhook_version: Option<String>,
    pub listen: SocketAddr,
    /// `HEALTH_METRICS_NAMESPACE`: where EMF metrics go.
    pub metrics_namespace: String,
    /// Set by Lambda mode, not the environment: EMF metric lines per
    /// evaluation, and no `/metrics` (that is serve mode's).
    pub lambda: bool,
}

/// An enabled component as configured: which, how critical, its settings.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    pub enabled: Enabled,
    pub settings: Arc<dyn Settings>,
}

impl Config {
    /// As [`Config::from_source`], first reading the database connection
    /// from Secrets Manager when `DATABASE_SECRET_ID` stands in for
    /// `DATABASE_URL` and an enabled component needs the database.
    pub async fn load(env: &dyn Source) -> Result<Self, ConfigError> {
        if !uses_postgres(&components_from(env)?) {
            return Self::from_source(env);
        }
        if crate::db::config::secret_in_place_of_url(env).is_none() {
            return Self::from_source(env);
        }
        let database = DbConfig::load(env).await?;
        Self::build(env, Some(database))
    }

    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        Self::build(env, None)
    }

    /// Every setting from `env`; the database's as given, else from
    /// `DATABASE_URL` when an enabled component needs it.
    fn build(env: &dyn Source, database: Option<DbConfig>) -> Result<Self, ConfigError> {
        let enabled = components_from(env)?;
        let criticality = Criticality::from_source(env)?;
        let database = match database {
            Some(given) => Some(given),
            None if uses_postgres(&enabled) => Some(DbConfig::from_source(env)?),
            None => None,
        };
        let mut components = Vec::with_capacity(enabled.len());
        for component in enabled {
            components.push(ComponentConfig {
                enabled: Enabled {
                    component,
                    critical: criticality.of(component),
                },
                settings: (component.read_settings)(env)?,
            });
        }
        let timeout = Duration::from_millis(number(env, "HEALTH_TIMEOUT_MS", 150, 1, 60_000)?);
        let cache_ttl =
            Duration::from_millis(number(env, "HEALTH_CACHE_TTL_MS", 1000, 0, 3_600_000)?);
        let unhealthy_status = unhealthy_status(env)?;
        let listen = listen(env)?;
        Ok(Self {
            components,
            database,
            timeout,
            cache_ttl,
            unhealthy_status,
            details_token: env.get("HEALTH_DETAILS_TOKEN").map(Secret::new),
            metrics_token: env.get("HEALTH_METRICS_TOKEN").map(Secret::new),
            meshhook_version: meshhook_version(env),
            listen,
            metrics_namespace: metrics_namespace(env)?,
            lambda: false,
        })
    }

    /// Every secret value the process knows, so that logs can redact them from
    /// error text that a library produced.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(db) = &self.database {
            out.extend(db.password().map(str::to_owned));
        }
        for component in &self.components {
            out.extend(component.settings.secrets());
        }
        for token in [&self.details_token, &self.metrics_token] {
            out.extend(token.as_ref().map(|t| t.expose().to_owned()));
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

/// `HEALTH_CRITICAL` and `HEALTH_NONCRITICAL`: the components whose
/// criticality the operator turned from its default.
struct Criticality {
    critical: Vec<&'static Component>,
    noncritical: Vec<&'static Component>,
}

impl Criticality {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let named = |variable| match env.get(variable) {
            None => Ok(Vec::new()),
            Some(list) => parse_components(variable, &list, true),
        };
        let (critical, noncritical) = (named("HEALTH_CRITICAL")?, named("HEALTH_NONCRITICAL")?);
        for (variable, list) in [
            ("HEALTH_CRITICAL", &critical),
            ("HEALTH_NONCRITICAL", &noncritical),
        ] {
            if let Some(private) = list.iter().find(|c| c.private) {
                return Err(ConfigError::new(
                    variable,
                    format!(
                        "names {:?}, a private component: it never counts towards the public status",
                        private.name
                    ),
                ));
            }
        }
        if let Some(both) = critical
            .iter()
            .find(|c| noncritical.iter().any(|n| n.name == c.name))
        {
            return Err(ConfigError::new(
                "HEALTH_CRITICAL",
                format!("names {:?}, which HEALTH_NONCRITICAL names too", both.name),
            ));
        }
        Ok(Self {
            critical,
            noncritical,
        })
    }

    /// Named non-critical → not critical; named critical → critical; else
    /// the component's default.
    fn of(&self, component: &'static Component) -> bool {
        let named = |list: &[&Component]| list.iter().any(|c| c.name == component.name);
        if named(&self.noncritical) {
            false
        } else {
            named(&self.critical) || component.critical_by_default
        }
    }
}

/// `HEALTH_COMPONENTS`, or every component enabled by default.
fn components_from(env: &dyn Source) -> Result<Vec<&'static Component>, ConfigError> {
    match env.get("HEALTH_COMPONENTS") {
        None => Ok(REGISTRY.iter().filter(|d| d.enabled_by_default).collect()),
        Some(list) => parse_components("HEALTH_COMPONENTS", &list, false),
    }
}

fn uses_postgres(components: &[&Component]) -> bool {
    components.iter().any(|c| c.uses_postgres)
}

/// `MESHHOOK_VERSION`, when set: MeshHook's version as the operator states
/// it. Never this checker's own (that is `--version`).
pub fn meshhook_version(env: &dyn Source) -> Option<String> {
    env.get("MESHHOOK_VERSION").map(|v| v.trim().to_owned())
}

/// `HEALTH_UNHEALTHY_STATUS`: 500 or 503.
fn unhealthy_status(env: &dyn Source) -> Result<u16, ConfigError> {
    match env.get("HEALTH_UNHEALTHY_STATUS").as_deref().map(str::trim) {
        None | Some("500") => Ok(500),
        Some("503") => Ok(503),
        Some(_) => Err(ConfigError::new(
            "HEALTH_UNHEALTHY_STATUS",
            "must be 500 or 503",
        )),
    }
}

/// Where `serve` listens: `HEALTH_LISTEN`, else every interface on `PORT`
/// (the convention of Railway, Cloud Run, Heroku and Fly.io: the platform
/// names the port and routes to every interface), else 127.0.0.1:3000.
fn listen(env: &dyn Source) -> Result<SocketAddr, ConfigError> {
    match (env.get("HEALTH_LISTEN"), env.get("PORT")) {
        (Some(addr), _) => parse_listen("HEALTH_LISTEN", &addr),
        (None, Some(port)) => {
            let port = port
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    ConfigError::new("PORT", "expected a port number from 1 to 65535")
                })?;
            Ok(SocketAddr::from(([0, 0, 0, 0], port)))
        }
        (None, None) => Ok(SocketAddr::from(([127, 0, 0, 1], 3000))),
    }
}

/// `HEALTH_METRICS_NAMESPACE`, checked as CloudWatch would.
fn metrics_namespace(env: &dyn Source) -> Result<String, ConfigError> {
    match env.get("HEALTH_METRICS_NAMESPACE") {
        Some(raw) => crate::emf::namespace(raw.trim())
            .map_err(|problem| ConfigError::new("HEALTH_METRICS_NAMESPACE", problem)),
        None => Ok(crate::emf::DEFAULT_NAMESPACE.to_owned()),
    }
}

/// Parses a listen address for `HEALTH_LISTEN` or `--listen`.
pub fn parse_listen(variable: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(variable, "expected an address such as 127.0.0.1:3000"))
}

/// A comma list of component names, in registry order whatever order the
/// list used.
fn parse_components(
    variable: &'static str,
    list: &str,
    allow_empty: bool,
) -> Result<Vec<&'static Component>, ConfigError> {
    let mut named = Vec::new();
    for name in crate::env::list(list) {
        let component = crate::checks::find(&name).ok_or_else(|| {
            let known: Vec<&str> = REGISTRY.iter().map(|d| d.name).collect();
            ConfigError::new(
                variable,
                format!(
                    "unknown component {name:?} (expected some of {})",
                    known.join(", ")
                ),
            )
        })?;
        named.push(component.name);
    }
    if named.is_empty() && !allow_empty {
        return Err(ConfigError::new(variable, "names no component"));
    }
    Ok(REGISTRY
        .iter()
        .filter(|c| named.contains(&c.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::env::pairs as env;

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

    fn names(config: &Config) -> Vec<&'static str> {
        config.components.iter().map(|c| c.enabled.name()).collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::from_source(&env(&full())).unwrap();
        assert_eq!(names(&config), ["database", "supabase", "workers"]);
        assert!(config.components.iter().all(|c| c.enabled.critical));
        assert_eq!(config.timeout, Duration::from_millis(150));
        assert_eq!(config.cache_ttl, Duration::from_millis(1000));
        assert_eq!(config.unhealthy_status, 500);
        assert_eq!(config.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.meshhook_version, None, "never the checker's own");
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
            ("HEALTH_COMPONENTS", "database,cache"),
            ("HEALTH_NONCRITICAL", "everything"),
            ("HEALTH_CRITICAL", "everything"),
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
    fn serve_address_comes_from_health_listen_then_port() {
        let listen = |pairs: &[(&str, &str)]| {
            let mut all = full();
            all.extend_from_slice(pairs);
            Config::from_source(&env(&all)).map(|c| c.listen)
        };
        assert_eq!(listen(&[]).unwrap(), "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            listen(&[("PORT", "8080")]).unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            listen(&[("PORT", "8080"), ("HEALTH_LISTEN", "127.0.0.1:9000")]).unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        for bad in ["http", "0", "70000"] {
            assert_eq!(listen(&[("PORT", bad)]).unwrap_err().variable, "PORT");
        }
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
    fn lists_and_thresholds_parse() {
        let mut pairs = full();
        pairs.extend([
            ("HEALTH_COMPONENTS", " workers , database,workers "),
            ("HEALTH_NONCRITICAL", "workers"),
            ("HEALTH_UNHEALTHY_STATUS", "503"),
            ("MESHHOOK_VERSION", "1.4.2"),
        ]);
        let config = Config::from_source(&env(&pairs)).unwrap();
        assert_eq!(names(&config), ["database", "workers"]);
        let critical: Vec<bool> = config
            .components
            .iter()
            .map(|c| c.enabled.critical)
            .collect();
        assert_eq!(critical, [true, false]);
        assert_eq!(config.unhealthy_status, 503);
        assert_eq!(config.meshhook_version.as_deref(), Some("1.4.2"));
    }

    #[test]
    fn criticality_is_the_default_unless_named_and_never_named_twice() {
        let of = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = full();
            pairs.extend_from_slice(extra);
            Config::from_source(&env(&pairs)).map(|config| {
                config
                    .components
                    .iter()
                    .map(|c| (c.enabled.name(), c.enabled.critical))
                    .collect::<Vec<_>>()
            })
        };
        let all = [("database", true), ("supabase", true), ("workers", true)];
        assert_eq!(of(&[]).unwrap(), all);
        assert_eq!(of(&[("HEALTH_CRITICAL", "workers")]).unwrap(), all);
        assert_eq!(
            of(&[("HEALTH_NONCRITICAL", "supabase")]).unwrap(),
            [("database", true), ("supabase", false), ("workers", true)]
        );
        let both = of(&[
            ("HEALTH_CRITICAL", "workers"),
            ("HEALTH_NONCRITICAL", "workers"),
        ]);
        let error = both.unwrap_err();
        assert_eq!(error.variable, "HEALTH_CRITICAL");
        assert!(error.to_string().contains("\"workers\""), "{error}");
    }
}
