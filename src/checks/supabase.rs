//! The `supabase` component, in one of two modes:
//! - gateway: each configured service's health route through the project
//!   URL, with the project's API key, all at once;
//! - management: one call to the Management API's project health endpoint.
//!
//! The component is `unhealthy` when every service is, `degraded` when some
//! but not all are unwell (MeshHook still runs workflows without, say,
//! Realtime), `healthy` otherwise.

use futures_util::future::{join_all, BoxFuture};
use reqwest::{Client, StatusCode};
use serde::Deserialize;

use crate::component::{Check, Context, Definition, Settings, StartupError};
use crate::db::Session;
use crate::env::{ConfigError, Secret, Source};
use crate::outcome::{CheckOutcome, Reason, Status};

pub const DEFINITION: Definition = Definition {
    name: "supabase",
    enabled_by_default: true,
    needs_database: false,
    settings,
};

fn settings(env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(supabase_from(env)?))
}

impl Settings for SupabaseConfig {
    fn secrets(&self) -> Vec<String> {
        match self {
            Self::Gateway { anon_key, .. } => vec![anon_key.expose().to_owned()],
            Self::Management { access_token, .. } => vec![access_token.expose().to_owned()],
        }
    }

    fn check(&self, context: &Context) -> Result<Box<dyn Check>, StartupError> {
        Ok(Box::new(SupabaseCheck::new(
            crate::tls::https_client(context.version)?,
            self.clone(),
        )))
    }
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

pub fn supabase_from(env: &dyn Source) -> Result<SupabaseConfig, ConfigError> {
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

/// Largest response body read: health answers are tiny, and a peer that
/// streams megabytes must not cost us memory.
const MAX_BODY: usize = 64 * 1024;

/// The observation of one service.
#[derive(Debug, Clone)]
struct ServiceResult {
    status: Status,
    reason: Option<Reason>,
    error: Option<String>,
}

impl ServiceResult {
    fn healthy() -> Self {
        Self {
            status: Status::Healthy,
            reason: None,
            error: None,
        }
    }

    fn failed(status: Status, reason: Reason, error: impl Into<String>) -> Self {
        Self {
            status,
            reason: Some(reason),
            error: Some(error.into()),
        }
    }
}

pub struct SupabaseCheck {
    client: Client,
    config: SupabaseConfig,
}

impl SupabaseCheck {
    pub fn new(client: Client, config: SupabaseConfig) -> Self {
        Self { client, config }
    }

    async fn check(&self) -> CheckOutcome {
        let results: Vec<(String, ServiceResult)> = match &self.config {
            SupabaseConfig::Gateway {
                url,
                anon_key,
                services,
            } => {
                let probes = services
                    .iter()
                    .map(|&service| self.probe_gateway(url, anon_key.expose(), service));
                let results = join_all(probes).await;
                services
                    .iter()
                    .map(|s| s.name().to_owned())
                    .zip(results)
                    .collect()
            }
            SupabaseConfig::Management {
                api_url,
                access_token,
                project_ref,
                services,
            } => {
                self.ask_management(api_url, access_token.expose(), project_ref, services)
                    .await
            }
        };
        combine(results)
    }

    async fn probe_gateway(
        &self,
        base: &reqwest::Url,
        key: &str,
        service: GatewayService,
    ) -> ServiceResult {
        let url = match base.join(service.path()) {
            Ok(u) => u,
            Err(e) => {
                return ServiceResult::failed(
                    Status::Unhealthy,
                    Reason::NotConfigured,
                    e.to_string(),
                )
            }
        };
        let Ok(mut apikey) = reqwest::header::HeaderValue::from_str(key) else {
            return ServiceResult::failed(
                Status::Unhealthy,
                Reason::NotConfigured,
                "API key is not a valid header value",
            );
        };
        // Sensitive values are left out of every Debug output (and so of traces).
        apikey.set_sensitive(true);
        let mut request = self.client.get(url).header("apikey", apikey);
        if is_jwt_shaped(key) {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        if status != StatusCode::OK {
            return status_failure(status);
        }
        if service != GatewayService::Auth {
            return ServiceResult::healthy();
        }
        // GoTrue answers its health route with a JSON object; anything else
        // (an HTML error page with 200, say) is not Auth.
        match read_body(response).await {
            Ok(body) => match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(serde_json::Value::Object(_)) => ServiceResult::healthy(),
                _ => ServiceResult::failed(
                    Status::Unhealthy,
                    Reason::BadResponse,
                    "auth health is not a JSON object",
                ),
            },
            Err(failure) => failure,
        }
    }

    async fn ask_management(
        &self,
        api_url: &reqwest::Url,
        token: &str,
        project_ref: &str,
        services: &[String],
    ) -> Vec<(String, ServiceResult)> {
        let all = |result: ServiceResult| {
            services
                .iter()
                .map(|s| (s.clone(), result.clone()))
                .collect()
        };
        let mut url = match api_url.join(&format!("v1/projects/{project_ref}/health")) {
            Ok(u) => u,
            Err(e) => {
                return all(ServiceResult::failed(
                    Status::Unhealthy,
                    Reason::NotConfigured,
                    e.to_string(),
                ))
            }
        };
        {
            let mut query = url.query_pairs_mut();
            for service in services {
                query.append_pair("services", service);
            }
        }
        let response = match self.client.get(url).bearer_auth(token).send().await {
            Ok(r) => r,
            Err(e) => return all(transport_failure(&e)),
        };
        let status = response.status();
        if status != StatusCode::OK {
            return all(status_failure(status));
        }
        let body = match read_body(response).await {
            Ok(b) => b,
            Err(failure) => return all(failure),
        };
        #[derive(Deserialize)]
        struct ServiceHealth {
            name: String,
            status: String,
        }
        let Ok(reported) = serde_json::from_slice::<Vec<ServiceHealth>>(&body) else {
            return all(ServiceResult::failed(
                Status::Unhealthy,
                Reason::BadResponse,
                "management API health is not an array of services",
            ));
        };
        services
            .iter()
            .map(|name| {
                let result = match reported
                    .iter()
                    .find(|r| &r.name == name)
                    .map(|r| r.status.as_str())
                {
                    Some("ACTIVE_HEALTHY") => ServiceResult::healthy(),
                    Some("COMING_UP") => {
                        ServiceResult::failed(Status::Degraded, Reason::BadStatus, "COMING_UP")
                    }
                    Some(other) => ServiceResult::failed(
                        Status::Unhealthy,
                        Reason::BadStatus,
                        other.to_owned(),
                    ),
                    None => ServiceResult::failed(
                        Status::Unhealthy,
                        Reason::BadResponse,
                        "service absent from answer",
                    ),
                };
                (name.clone(), result)
            })
            .collect()
    }
}

impl Check for SupabaseCheck {
    fn run<'a>(&'a self, _session: Option<&'a Session<'a>>) -> BoxFuture<'a, CheckOutcome> {
        Box::pin(self.check())
    }
}

/// Legacy Supabase keys are JWTs (three base64url parts) and also go in
/// `Authorization`; newer `sb_…` keys go only in `apikey`.
fn is_jwt_shaped(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    !key.starts_with("sb_")
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn status_failure(status: StatusCode) -> ServiceResult {
    let text = format!("HTTP {}", status.as_u16());
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ServiceResult::failed(Status::Unhealthy, Reason::Auth, text)
        }
        // Rate limited: the service answers, but not our question.
        StatusCode::TOO_MANY_REQUESTS => {
            ServiceResult::failed(Status::Degraded, Reason::RateLimited, text)
        }
        _ => ServiceResult::failed(Status::Unhealthy, Reason::BadStatus, text),
    }
}

fn transport_failure(e: &reqwest::Error) -> ServiceResult {
    let text = crate::db::error_chain(e);
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else if has_tls_cause(e) {
        Reason::Tls
    } else if e.is_connect() || e.is_request() {
        Reason::Unreachable
    } else {
        Reason::BadResponse
    };
    ServiceResult::failed(Status::Unhealthy, reason, text)
}

fn has_tls_cause(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        source = s.source();
    }
    false
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, ServiceResult> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ServiceResult::failed(
                        Status::Unhealthy,
                        Reason::BadResponse,
                        "body too large",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_failure(&e)),
        }
    }
}

fn combine(results: Vec<(String, ServiceResult)>) -> CheckOutcome {
    let all_unhealthy = results.iter().all(|(_, r)| r.status == Status::Unhealthy);
    let worst = results
        .iter()
        .map(|(_, r)| r.status)
        .max()
        .unwrap_or(Status::Healthy);
    let status = match worst {
        Status::Unhealthy if !all_unhealthy => Status::Degraded,
        other => other,
    };
    let reason = results
        .iter()
        .find(|(_, r)| r.status == worst)
        .and_then(|(_, r)| r.reason);
    let services = serde_json::Value::Object(
        results
            .iter()
            .map(|(n, r)| (n.clone(), serde_json::json!(r.status)))
            .collect(),
    );
    let errors: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.error.as_ref().map(|e| format!("{name}: {e}")))
        .collect();
    CheckOutcome {
        status,
        reason,
        facts: vec![("services", services)],
        metrics: Vec::new(),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::env::pairs as env;

    const GATEWAY: [(&str, &str); 2] = [
        ("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co"),
        ("SUPABASE_ANON_KEY", "sb_publishable_x"),
    ];

    #[test]
    fn gateway_mode_defaults_to_auth_and_realtime() {
        match supabase_from(&env(&GATEWAY)).unwrap() {
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
        let config = supabase_from(&env(&pairs)).unwrap();
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
        let error = supabase_from(&env(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SUPABASE_PROJECT_REF");
    }
}
