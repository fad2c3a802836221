//! The `supabase` component, in one of two modes ([`settings`]):
//! - [`gateway`]: each configured service's health route through the
//!   project URL, with the project's API key, all at once;
//! - [`management`]: one call to the Management API's project health
//!   endpoint.
//!
//! Each service's observation is a [`CheckOutcome`]; the component is
//! `unhealthy` when a critical service (`SUPABASE_CRITICAL_SERVICES`) is,
//! `degraded` when any service is not healthy (MeshHook still runs
//! workflows without, say, Realtime), `healthy` otherwise.

mod gateway;
mod keys;
mod management;
mod realtime;
pub mod settings;

use futures_util::future::BoxFuture;
use reqwest::{Client, StatusCode};

use crate::component::{BuildContext, Check, CheckContext, Component, Settings, StartupError};
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, Reason, Status};
pub use settings::{GatewayService, SupabaseSettings, SupabaseMode};

pub const COMPONENT: Component = Component {
    name: "supabase",
    enabled_by_default: true,
    uses_postgres: false,
    read_settings,
    figures: &[],
};

fn read_settings(env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(SupabaseSettings::from_source(env)?))
}

impl Settings for SupabaseSettings {
    fn secrets(&self) -> Vec<String> {
        match &self.mode {
            SupabaseMode::Gateway { anon_key, .. } => vec![anon_key.expose().to_owned()],
            SupabaseMode::Management { access_token, .. } => {
                vec![access_token.expose().to_owned()]
            }
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
    config: SupabaseSettings,
}

impl Check for SupabaseCheck {
    fn run<'a>(
        &'a self,
        _context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>> {
        Box::pin(async move {
            let services = match &self.config.mode {
                SupabaseMode::Gateway {
                    url,
                    anon_key,
                    services,
                } => gateway::probe(&self.client, url, anon_key.expose(), services).await,
                SupabaseMode::Management {
                    api_url,
                    access_token,
                    project_ref,
                    services,
                } => {
                    let token = access_token.expose();
                    management::ask(&self.client, api_url, token, project_ref, services).await
                }
            };
            Ok(combine(services, &self.config.critical))
        })
    }
}

/// Largest response body read: health answers are tiny, and a peer that
/// streams megabytes must not cost us memory.
const MAX_BODY: usize = 64 * 1024;

/// An answer other than the healthy one, by its status: 401/403 → `auth`;
/// 540 (Supabase: project paused, down until its owner restores it) →
/// `paused`; 402 (Supabase: a usage quota exceeded, services restricted) →
/// `over_quota`; 544 (Supabase's gateway timeout) → `timeout`; 429 →
/// degraded (`rate_limited`: the service answers, but not our question);
/// anything else → `bad_status`. `code` is PostgREST's error code, when the
/// body carried one; the log text names it beside the status.
fn status_outcome(status: StatusCode, code: Option<&str>) -> CheckOutcome {
    let text = match code {
        Some(code) => format!("HTTP {} ({code})", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    let reason = match status.as_u16() {
        401 | 403 => Reason::Auth,
        540 => Reason::Paused,
        402 => Reason::OverQuota,
        544 => Reason::Timeout,
        429 => return CheckOutcome::failed(Status::Degraded, Reason::RateLimited, text),
        _ => Reason::BadStatus,
    };
    CheckOutcome::unhealthy(reason, text)
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
    // The URL may carry the API key (Realtime's handshake sends it as a
    // query parameter, as supabase-js does): keep it out of the text.
    let mut failure = Failure::from_error(e, fallback);
    if let Some(url) = e.url() {
        failure.message = failure.message.replace(url.as_str(), "<url>");
    }
    failure
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

/// The component's outcome from its services' (in configured order): the
/// worst status, except that an unhealthy service that is not critical only
/// degrades the component. The reason is that of the first service with the
/// resulting status.
fn combine(results: Vec<(String, CheckOutcome)>, critical: &[String]) -> CheckOutcome {
    let mut all = Aggregate::default();
    for (name, r) in &results {
        let error = r.error.as_ref().map(|e| format!("{name}: {e}"));
        if critical.contains(name) {
            all.add(r.status, r.reason, error);
        } else {
            all.add_noncritical(r.status, r.reason, error);
        }
    }
    let services = serde_json::Value::Object(
        results
            .iter()
            .map(|(n, r)| (n.clone(), serde_json::json!(r.status)))
            .collect(),
    );
    all.into_outcome().with_facts(vec![("services", services)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(statuses: &[(&str, Status)]) -> Vec<(String, CheckOutcome)> {
        statuses
            .iter()
            .map(|&(name, status)| {
                let outcome = match status {
                    Status::Healthy => CheckOutcome::healthy(),
                    _ => CheckOutcome::failed(status, Reason::BadStatus, "HTTP 503"),
                };
                (name.to_owned(), outcome)
            })
            .collect()
    }

    #[test]
    fn a_critical_service_down_alone_is_unhealthy_and_any_other_only_degrades() {
        use Status::{Degraded, Healthy, Unhealthy};
        let critical = ["auth".to_owned(), "rest".to_owned()];
        let cases: [(&[(&str, Status)], Status); 6] = [
            (&[("auth", Healthy), ("rest", Healthy), ("realtime", Healthy)], Healthy),
            (&[("auth", Unhealthy), ("rest", Healthy), ("realtime", Healthy)], Unhealthy),
            (&[("auth", Healthy), ("rest", Unhealthy), ("realtime", Healthy)], Unhealthy),
            (&[("auth", Healthy), ("rest", Healthy), ("realtime", Unhealthy)], Degraded),
            (&[("auth", Degraded), ("rest", Healthy), ("realtime", Healthy)], Degraded),
            (&[("realtime", Unhealthy), ("storage", Unhealthy)], Degraded),
        ];
        for (statuses, expected) in cases {
            let outcome = combine(services(statuses), &critical);
            assert_eq!(outcome.status, expected, "{statuses:?}");
            assert_eq!(outcome.reason.is_some(), expected != Healthy, "{statuses:?}");
        }
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn supabase_statuses_have_reasons_of_their_own() {
        let of = |status: u16| {
            let outcome = status_outcome(StatusCode::from_u16(status).unwrap(), None);
            (outcome.status, outcome.reason.unwrap())
        };
        assert_eq!(of(540), (Status::Unhealthy, Reason::Paused));
        assert_eq!(of(402), (Status::Unhealthy, Reason::OverQuota));
        assert_eq!(of(544), (Status::Unhealthy, Reason::Timeout));
        assert_eq!(of(401), (Status::Unhealthy, Reason::Auth));
        assert_eq!(of(403), (Status::Unhealthy, Reason::Auth));
        assert_eq!(of(429), (Status::Degraded, Reason::RateLimited));
        assert_eq!(of(503), (Status::Unhealthy, Reason::BadStatus));
        let logged = status_outcome(StatusCode::SERVICE_UNAVAILABLE, Some("PGRST002"));
        assert_eq!(logged.error.as_deref(), Some("HTTP 503 (PGRST002)"));
    }
}
