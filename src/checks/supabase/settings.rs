//! The `supabase` component's settings: gateway mode (`SUPABASE_URL`,
//! `SUPABASE_ANON_KEY`) or Management API mode (`SUPABASE_ACCESS_TOKEN`
//! and `SUPABASE_PROJECT_REF`), and which services to ask.

use crate::env::{ConfigError, Secret, Source};

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

impl SupabaseConfig {
    /// `SUPABASE_*` → the mode and its settings.
    pub fn from_source(env: &dyn Source) -> Result<SupabaseConfig, ConfigError> {
        from_source(env)
    }
}

fn from_source(env: &dyn Source) -> Result<SupabaseConfig, ConfigError> {
    let service_names = crate::env::list(
        env.get("SUPABASE_SERVICES")
            .as_deref()
            .unwrap_or("auth,realtime"),
    );
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
    use super::*;
    use crate::component::Settings;

    use crate::env::pairs as env;

    const GATEWAY: [(&str, &str); 2] = [
        ("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co"),
        ("SUPABASE_ANON_KEY", "sb_publishable_x"),
    ];

    #[test]
    fn gateway_mode_defaults_to_auth_and_realtime() {
        match from_source(&env(&GATEWAY)).unwrap() {
            SupabaseConfig::Gateway { url, services, .. } => {
                assert_eq!(url.as_str(), "https://abcdefghijklmnopqrst.supabase.co/");
                assert_eq!(services, [GatewayService::Auth, GatewayService::Realtime]);
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
        match config {
            SupabaseConfig::Management {
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
}
