//! The `supabase` component, in one of two modes ([`settings`]):
//! - [`gateway`]: each configured service's health route through the
//!   project URL, with the project's API key, all at once;
//! - [`management`]: one call to the Management API's project health
//!   endpoint.
//!
//! Each service's observation is a [`CheckOutcome`]; the component is
//! `unhealthy` when every service is, `degraded` when some but not all are
//! unwell (MeshHook still runs workflows without, say, Realtime), `healthy`
//! otherwise.

mod gateway;
mod management;
pub mod settings;

use futures_util::future::BoxFuture;
use reqwest::{Client, StatusCode};

use crate::component::{BuildContext, Check, CheckContext, Component, Settings, StartupError};
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason, Status};
pub use settings::{GatewayService, SupabaseConfig};

pub const COMPONENT: Component = Component {
    name: "supabase",
    enabled_by_default: true,
    uses_postgres: false,
    read_settings,
};

fn read_settings(env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(SupabaseConfig::from_source(env)?))
}

impl Settings for SupabaseConfig {
    fn secrets(&self) -> Vec<String> {
        match self {
            Self::Gateway { anon_key, .. } => vec![anon_key.expose().to_owned()],
            Self::Management { access_token, .. } => vec![access_token.expose().to_owned()],
        }
    }

    fn build(&self, context: &BuildContext) -> Result<Box<dyn Check>, StartupError> {
        let client = crate::tls::https_client(context.checker_version)
            .map_err(|e| StartupError::new("the HTTPS client for Supabase", e))?;
        Ok(Box::new(SupabaseCheck {
            client,
            config: self.clone(),
        }))
    }
}

struct SupabaseCheck {
    client: Client,
    config: SupabaseConfig,
}

impl Check for SupabaseCheck {
    fn run<'a>(
        &'a self,
        _context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>> {
        Box::pin(async move {
            let services = match &self.config {
                SupabaseConfig::Gateway {
                    url,
                    anon_key,
                    services,
                } => gateway::probe(&self.client, url, anon_key.expose(), services).await,
                SupabaseConfig::Management {
                    api_url,
                    access_token,
                    project_ref,
                    services,
                } => {
                    let token = access_token.expose();
                    management::ask(&self.client, api_url, token, project_ref, services).await
                }
            };
            Ok(combine(services))
        })
    }
}

/// Largest response body read: health answers are tiny, and a peer that
/// streams megabytes must not cost us memory.
const MAX_BODY: usize = 64 * 1024;

/// A non-200 answer: 401/403 → `auth`; 429 → degraded (`rate_limited`: the
/// service answers, but not our question); anything else → `bad_status`.
fn status_outcome(status: StatusCode) -> CheckOutcome {
    let text = format!("HTTP {}", status.as_u16());
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            CheckOutcome::unhealthy(Reason::Auth, text)
        }
        StatusCode::TOO_MANY_REQUESTS => {
            CheckOutcome::failed(Status::Degraded, Reason::RateLimited, text)
        }
        _ => CheckOutcome::unhealthy(Reason::BadStatus, text),
    }
}

/// A request that got no (whole) answer, in the shared failure vocabulary.
fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::new(Reason::Timeout, crate::failure::chain(e));
    }
    let fallback = if e.is_connect() || e.is_request() {
        Reason::Unreachable
    } else {
        Reason::BadResponse
    };
    Failure::from_error(e, fallback)
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::new(Reason::BadResponse, "body too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The component's outcome from its services' (in configured order).
fn combine(results: Vec<(String, CheckOutcome)>) -> CheckOutcome {
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
        meshhook_version: None,
    }
}
