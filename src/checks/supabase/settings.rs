//! The `supabase` component's settings: gateway mode (`SUPABASE_URL`,
//! `SUPABASE_ANON_KEY`) or Management API mode (`SUPABASE_ACCESS_TOKEN`
//! and `SUPABASE_PROJECT_REF`), which services to ask
//! (`SUPABASE_SERVICES`) and which of them MeshHook cannot run without
//! (`SUPABASE_CRITICAL_SERVICES`), and how often serve mode keeps
//! Realtime's socket alive (`SUPABASE_REALTIME_HEARTBEAT_SECS`).

use super::keys;
use crate::env::{http_base_url, ConfigError, Secret, Source};

/// Services probed when `SUPABASE_SERVICES` is unset: Auth (every MeshHook
/// route checks the user), the Data API (every API route reads through
/// it) and Realtime (live run logs).
const DEFAULT_SERVICES: &str = "auth,rest,realtime";

/// supabase-js's heartbeat interval: Realtime's socket is kept open by a
/// heartbeat after this long idle (serve mode).
const DEFAULT_REALTIME_HEARTBEAT_SECS: u64 = 25;

/// Below the 60 s after which a Phoenix server closes a silent socket,
/// with room for the heartbeat's own round trip.
const MAX_REALTIME_HEARTBEAT_SECS: u64 = 45;

/// Services without which MeshHook's app and API stop, when
/// `SUPABASE_CRITICAL_SERVICES` is unset; applied to those probed.
const DEFAULT_CRITICAL: &[&str] = &["auth", "rest"];

/// The component's settings: how to ask, and what matters.
#[derive(Debug, Clone)]
pub struct SupabaseSettings {
    pub mode: SupabaseMode,
    /// Services whose being unhealthy makes the component unhealthy; the
    /// others only degrade it. Always a subset of the probed services.
    pub critical: Vec<String>,
}

/// How the Supabase services are asked.
#[derive(Debug, Clone)]
pub enum SupabaseMode {
    /// Each service's health route through the project gateway.
    Gateway {
        url: reqwest::Url,
        anon_key: Secret,
        services: Vec<GatewayService>,
        /// Serve mode: how long Realtime's kept socket may stay idle
        /// before a heartbeat keeps it open
        /// (`SUPABASE_REALTIME_HEARTBEAT_SECS`).
        realtime_heartbeat: std::time::Duration,
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

    /// The route asked, below the project URL. The Data API root
    /// (`rest/v1/`) refuses publishable and anon keys on hosted projects,
    /// so `rest` asks PostgREST for a table that does not exist: its own
    /// "not in the schema cache" answer proves it up with its cache.
    /// Realtime's `api/ping` is not routed on hosted projects; its
    /// WebSocket route is the one every supabase-js client opens.
    pub fn path(self) -> &'static str {
        match self {
            Self::Auth => "auth/v1/health",
            Self::Realtime => "realtime/v1/websocket",
            Self::Rest => "rest/v1/meshhook_health_probe",
            Self::Storage => "storage/v1/status",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Self> {
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

/// A Supabase base URL: [`http_base_url`], any query dropped.
fn http_url(variable: &'static str, raw: &str) -> Result<reqwest::Url, ConfigError> {
    let mut url = http_base_url(variable, raw)?;
    url.set_query(None);
    Ok(url)
}

pub(super) fn from_source(env: &dyn Source) -> Result<SupabaseSettings, ConfigError> {
    let service_names = crate::env::list(
        env.get("SUPABASE_SERVICES")
            .as_deref()
            .unwrap_or(DEFAULT_SERVICES),
    );
    if service_names.is_empty() {
        return Err(ConfigError::new("SUPABASE_SERVICES", "names no service"));
    }
    let critical = critical_services(env, &service_names)?;
    let mode = read_mode(env, service_names)?;
    Ok(SupabaseSettings { mode, critical })
}

/// `SUPABASE_CRITICAL_SERVICES`, which must name probed services only; by
/// default, those of auth and rest that are probed.
fn critical_services(env: &dyn Source, probed: &[String]) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.get("SUPABASE_CRITICAL_SERVICES") else {
        return Ok(probed
            .iter()
            .filter(|name| DEFAULT_CRITICAL.contains(&name.as_str()))
            .cloned()
            .collect());
    };
    let critical = crate::env::list(&raw);
    if let Some(stray) = critical.iter().find(|name| !probed.contains(name)) {
        return Err(ConfigError::new(
            "SUPABASE_CRITICAL_SERVICES",
            format!(
                "names {stray:?}, which is not probed (it must be a subset of SUPABASE_SERVICES: {})",
                probed.join(", ")
            ),
        ));
    }
    Ok(critical)
}

/// The Management API when its token and project are both set, else the
/// project gateway.
fn read_mode(env: &dyn Source, service_names: Vec<String>) -> Result<SupabaseMode, ConfigError> {
    match (env.get("SUPABASE_ACCESS_TOKEN"), env.get("SUPABASE_PROJECT_REF")) {
        (Some(token), Some(project_ref)) => {
            management_mode(env, &token, &project_ref, service_names)
        }
        _ => gateway_mode(env, &service_names),
    }
}

fn management_mode(
    env: &dyn Source,
    token: &str,
    project_ref: &str,
    services: Vec<String>,
) -> Result<SupabaseMode, ConfigError> {
    let project_ref = project_ref.trim().to_owned();
    if !project_ref.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(
            "SUPABASE_PROJECT_REF",
            "expected the project's reference id (letters and digits)",
        ));
    }
    if let Some(name) = services
        .iter()
        .find(|name| !MANAGEMENT_SERVICES.contains(&name.as_str()))
    {
        return Err(ConfigError::new(
            "SUPABASE_SERVICES",
            format!(
                "unknown service {name:?} (expected some of {})",
                MANAGEMENT_SERVICES.join(", ")
            ),
        ));
    }
    let api_url = http_url(
        "SUPABASE_API_URL",
        env.get("SUPABASE_API_URL")
            .as_deref()
            .unwrap_or("https://api.supabase.com"),
    )?;
    Ok(SupabaseMode::Management {
        api_url,
        access_token: Secret::new(token.trim()),
        project_ref,
        services,
    })
}

fn gateway_mode(env: &dyn Source, service_names: &[String]) -> Result<SupabaseMode, ConfigError> {
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
    let anon_key = keys::publishable_key(&anon_key)?;
    let services = service_names
        .iter()
        .map(|name| {
            GatewayService::parse(name).ok_or_else(|| {
                ConfigError::new(
                    "SUPABASE_SERVICES",
                    format!(
                        "unknown service {name:?} (expected some of auth, realtime, rest, storage)"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let realtime_heartbeat = crate::env::number(
        env,
        "SUPABASE_REALTIME_HEARTBEAT_SECS",
        DEFAULT_REALTIME_HEARTBEAT_SECS,
        1,
        MAX_REALTIME_HEARTBEAT_SECS,
    )?;
    Ok(SupabaseMode::Gateway {
        url,
        anon_key: Secret::new(anon_key),
        services,
        realtime_heartbeat: std::time::Duration::from_secs(realtime_heartbeat),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Settings;

    use crate::env::pairs as env;

    const GATEWAY: [(&str, &str); 2] = [
        ("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co"),
        ("SUPABASE_ANON_KEY", "sb_publishable_x"),
    ];

    #[test]
    fn gateway_mode_defaults_to_auth_rest_and_realtime_with_auth_and_rest_critical() {
        let config = from_source(&env(&GATEWAY)).unwrap();
        assert_eq!(config.critical, ["auth", "rest"]);
        match config.mode {
            SupabaseMode::Gateway { url, services, .. } => {
                assert_eq!(url.as_str(), "https://abcdefghijklmnopqrst.supabase.co/");
                assert_eq!(
                    services,
                    [
                        GatewayService::Auth,
                        GatewayService::Rest,
                        GatewayService::Realtime
                    ]
                );
            }
            other => panic!("expected gateway mode, got {other:?}"),
        }
    }

    #[test]
    fn management_mode_needs_token_and_ref() {
        let mut pairs = GATEWAY.to_vec();
        pairs.extend([
            ("SUPABASE_ACCESS_TOKEN", "sbp_x"),
            ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
            ("SUPABASE_SERVICES", "auth,db,pooler"),
        ]);
        let config = from_source(&env(&pairs)).unwrap();
        assert_eq!(config.secrets(), ["sbp_x"]);
        assert_eq!(config.critical, ["auth"], "the default, among those probed");
        match config.mode {
            SupabaseMode::Management {
                api_url, services, ..
            } => {
                assert_eq!(api_url.as_str(), "https://api.supabase.com/");
                assert_eq!(services, ["auth", "db", "pooler"]);
            }
            other => panic!("expected management mode, got {other:?}"),
        }
        pairs.push(("SUPABASE_PROJECT_REF", "../../etc"));
        let error = from_source(&env(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SUPABASE_PROJECT_REF");
    }

    #[test]
    fn critical_services_must_be_probed() {
        let mut pairs = GATEWAY.to_vec();
        pairs.extend([
            ("SUPABASE_SERVICES", "auth,realtime"),
            ("SUPABASE_CRITICAL_SERVICES", "auth,rest"),
        ]);
        let error = from_source(&env(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SUPABASE_CRITICAL_SERVICES");
        assert!(error.to_string().contains("\"rest\""), "{error}");

        pairs.push(("SUPABASE_CRITICAL_SERVICES", "realtime"));
        assert_eq!(from_source(&env(&pairs)).unwrap().critical, ["realtime"]);
        pairs.retain(|(k, _)| *k != "SUPABASE_CRITICAL_SERVICES");
        pairs.push(("SUPABASE_SERVICES", "realtime,storage"));
        let none: [&str; 0] = [];
        assert_eq!(
            from_source(&env(&pairs)).unwrap().critical,
            none,
            "neither default critical service is probed"
        );
    }

    /// A legacy key with the given role claim (unsigned: only its claims
    /// are read).
    fn jwt(role: &str) -> String {
        use base64::Engine;
        let part = |json: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        format!(
            "{}.{}.c2lnbmF0dXJl",
            part(r#"{"alg":"HS256","typ":"JWT"}"#.into()),
            part(format!(r#"{{"iss":"supabase","ref":"abcdefghijklmnopqrst","role":"{role}"}}"#))
        )
    }

    #[test]
    fn secret_and_service_role_keys_are_refused_without_echoing_them() {
        for key in ["sb_secret_AbCdEf0123456789_xyz".to_owned(), jwt("service_role")] {
            let mut pairs = GATEWAY.to_vec();
            pairs.push(("SUPABASE_ANON_KEY", &key));
            let error = from_source(&env(&pairs)).unwrap_err();
            assert_eq!(error.variable, "SUPABASE_ANON_KEY");
            assert!(!error.to_string().contains(&key), "{error}");
            assert!(error.to_string().contains("row-level security"), "{error}");
        }
        for key in ["sb_publishable_x".to_owned(), jwt("anon"), "not.a-jwt".to_owned()] {
            let mut pairs = GATEWAY.to_vec();
            pairs.push(("SUPABASE_ANON_KEY", &key));
            assert!(from_source(&env(&pairs)).is_ok(), "{key}");
        }
        assert_eq!(keys::jwt_role(&jwt("anon")).as_deref(), Some("anon"));
    }
}
