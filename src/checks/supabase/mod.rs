//! The `supabase` component, in one of two modes ([`settings`]):
//! - [`gateway`]: each configured service's health route through the
//!   project URL, with the project's API key, all at once;
//! - [`management`]: one call to the Management API's project health
//!   endpoint.
//!
//! Each service's observation is a [`Verdict`]; the component is
//! `unhealthy` when a critical service (`SUPABASE_CRITICAL_SERVICES`) is,
//! `degraded` when any service is not healthy (MeshHook still runs
//! workflows without, say, Realtime), `healthy` otherwise.

mod gateway;
mod http;
mod keys;
mod management;
mod realtime;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use tokio::time::Instant;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, Lifetime, RunCheck, Settings,
    StartupError,
};
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, Verdict};
pub use settings::{GatewayService, SupabaseSettings, SupabaseMode};

pub const COMPONENT: Component = Component {
    name: "supabase",
    enabled_by_default: true,
    critical_by_default: true,
    private: false,
    uses_postgres: false,
    read_settings: read::<SupabaseSettings>,
    figures: &[],
};

impl Settings for SupabaseSettings {
    /// `SUPABASE_*` → the mode and its settings.
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        settings::from_source(env)
    }

    fn secrets(&self) -> Vec<String> {
        match &self.mode {
            SupabaseMode::Gateway { anon_key, .. } => vec![anon_key.expose().to_owned()],
            SupabaseMode::Management { access_token, .. } => {
                vec![access_token.expose().to_owned()]
            }
        }
    }

    fn build(self: Arc<Self>, context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        let realtime = match &self.mode {
            SupabaseMode::Gateway {
                url,
                anon_key,
                services,
                realtime_heartbeat,
            } if services.contains(&GatewayService::Realtime) => Some(Arc::new(
                realtime::Realtime::new(url, anon_key.expose(), *realtime_heartbeat)
                    .map_err(|e| StartupError::new("Realtime's socket", e))?,
            )),
            _ => None,
        };
        Ok(Box::new(SupabaseCheck {
            client: context.https_client("the HTTPS client for Supabase")?,
            realtime,
            settings: self,
        }))
    }
}

struct SupabaseCheck {
    client: Client,
    /// Realtime's kept socket, in gateway mode when Realtime is probed.
    realtime: Option<Arc<realtime::Realtime>>,
    settings: Arc<SupabaseSettings>,
}

impl Check for SupabaseCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let services = match &self.settings.mode {
            SupabaseMode::Gateway {
                url,
                anon_key,
                services,
                ..
            } => {
                let probes = gateway::Probes {
                    client: &self.client,
                    base: url,
                    key: anon_key.expose(),
                    realtime: self.realtime.as_deref(),
                };
                probes.all(services, service_deadline(context.deadline())).await
            }
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
        Ok(combine(services, &self.settings.critical))
    }

    fn warm_up(&self, lifetime: Lifetime) {
        if let Some(realtime) = &self.realtime {
            realtime.warm_up(lifetime);
        }
    }

    async fn close(&self) {
        if let Some(realtime) = &self.realtime {
            realtime.close().await;
        }
    }
}

/// When each service's probe gives up: a little before the evaluator's
/// deadline (a twentieth of what is left, at most 20 ms), so that one
/// service that never answers is that service's `timeout` — Realtime, not
/// critical by default, then only degrades the component — and the
/// component's outcome is still combined in time.
fn service_deadline(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - (left / 20).min(Duration::from_millis(20))
}

/// The component's outcome from its services' (in configured order): the
/// worst status, except that an unhealthy service that is not critical only
/// degrades the component. The reason is that of the first service with the
/// resulting status.
fn combine(results: Vec<(String, Verdict)>, critical: &[String]) -> CheckOutcome {
    let mut all = Aggregate::default();
    for (name, verdict) in &results {
        let part = verdict.clone().named(name);
        if critical.contains(name) {
            all.add(part);
        } else {
            all.add_noncritical(part);
        }
    }
    let services = serde_json::Value::Object(
        results
            .iter()
            .map(|(n, r)| (n.clone(), serde_json::json!(r.status)))
            .collect(),
    );
    CheckOutcome::from(all.verdict()).with_facts(vec![("services", services)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Reason, Status};

    fn services(statuses: &[(&str, Status)]) -> Vec<(String, Verdict)> {
        statuses
            .iter()
            .map(|&(name, status)| {
                let verdict = match status {
                    Status::Healthy => Verdict::healthy(),
                    _ => Verdict::of(status, Reason::BadStatus, "HTTP 503"),
                };
                (name.to_owned(), verdict)
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
            assert_eq!(outcome.verdict.status, expected, "{statuses:?}");
            assert_eq!(outcome.verdict.reason.is_some(), expected != Healthy, "{statuses:?}");
        }
    }
}
