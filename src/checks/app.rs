//! The `app` component (opt-in): MeshHook's front door, its web app, which
//! takes every webhook.
//!
//! The app is a process of its own (SvelteKit on Node.js): when it crashes,
//! fails its deploy, or cannot reach its own database, every webhook is
//! lost while the database, Supabase and the workers read healthy. So the
//! app itself is asked, with no side effect, two things at once on kept
//! connections, redirects never followed:
//!
//! - `webhooks` (critical): a `POST` to the webhook route with a slug that
//!   can never exist. MeshHook's route looks the slug up through its own
//!   database pool and answers `404 unknown workflow`: the process answers,
//!   routing works, its pool reads. No workflow has the slug, so no run is
//!   ever created; no signature header is sent, so no secret is needed.
//!   `application/json` keeps SvelteKit's CSRF check from refusing it.
//! - `ui` (not critical: degraded): the login page, `200 text/html`.
//!
//! Every other answer has its reason: 500 is the app failing (`app_error`),
//! 502–504 the platform's edge failing to reach it (`unreachable`), a 404
//! that is not MeshHook's a wrong address or a platform page
//! (`not_meshhook`).

use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode, Url};
use serde_json::json;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::env::{http_base_url, ConfigError, Source};
use crate::failure::Failure;
use crate::https::{read_body, transport_failure};
use crate::outcome::{Aggregate, CheckOutcome, Reason, Verdict};

pub const COMPONENT: Component = Component {
    name: "app",
    enabled_by_default: false,
    critical_by_default: true,
    private: false,
    uses_postgres: false,
    read_settings: read::<AppSettings>,
    figures: &[],
};

/// What MeshHook's webhook route answers for a slug no workflow has.
const UNKNOWN_WORKFLOW: &[u8] = b"unknown workflow";

/// The probe's slugs start with this, then 16 random hex digits.
pub const PROBE_SLUG_PREFIX: &str = "meshhook-health-probe-";

/// Most bytes of an unexpected body the log line carries.
const LOGGED_BODY: usize = 120;

/// `MESHHOOK_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// The app's base URL, ending in `/` so that routes join below it.
    pub url: Url,
}

impl Settings for AppSettings {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let refused = |problem: &str| ConfigError::new("MESHHOOK_URL", problem.to_owned());
        let raw = env
            .get("MESHHOOK_URL")
            .ok_or_else(|| refused("is required when the app component is enabled"))?;
        let url = http_base_url("MESHHOOK_URL", &raw)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refused("must not carry a query or fragment"));
        }
        Ok(Self { url })
    }

    fn build(self: Arc<Self>, context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        Ok(Box::new(AppCheck {
            client: context.https_client("the HTTP client for MeshHook's app")?,
            settings: self,
        }))
    }
}

struct AppCheck {
    client: Client,
    settings: Arc<AppSettings>,
}

impl Check for AppCheck {
    async fn observe(&self, _context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let (webhooks, ui) = tokio::join!(self.webhooks(), self.ui());
        let (webhooks, ui) = (
            webhooks.unwrap_or_else(Verdict::from),
            ui.unwrap_or_else(Verdict::from),
        );
        let parts = json!({"webhooks": webhooks.status, "ui": ui.status});
        let mut all = Aggregate::default();
        all.add(webhooks.named("webhooks"));
        all.add_noncritical(ui.named("ui"));
        Ok(CheckOutcome::from(all.verdict()).with_facts(vec![("parts", parts)]))
    }
}

impl AppCheck {
    /// The webhook route, with a slug that can never exist.
    async fn webhooks(&self) -> Result<Verdict, Failure> {
        let route = format!("api/hooks/{PROBE_SLUG_PREFIX}{}", random_hex()?);
        let url = self.join(&route)?;
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let body = read_body(response).await?;
        if status == StatusCode::NOT_FOUND && body == UNKNOWN_WORKFLOW {
            return Ok(Verdict::healthy());
        }
        Ok(answer_verdict(status, &body))
    }

    /// The login page every user lands on.
    async fn ui(&self) -> Result<Verdict, Failure> {
        let response = self
            .client
            .get(self.join("auth/login")?)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        let body = read_body(response).await?;
        if status == StatusCode::OK && html {
            return Ok(Verdict::healthy());
        }
        let mut verdict = answer_verdict(status, &body);
        if status == StatusCode::OK {
            verdict.text = Some("HTTP 200 that is not an HTML page".to_owned());
        }
        Ok(verdict)
    }

    fn join(&self, route: &str) -> Result<Url, Failure> {
        self.settings
            .url
            .join(route)
            .map_err(|e| Failure::new(Reason::NotConfigured, e.to_string()))
    }
}

/// An answer other than the healthy one: 500 → `app_error` (the app ran
/// and failed); 502, 503, 504 → `unreachable` (the platform's edge could not
/// reach it); 404 → `not_meshhook` (not the app's own answer); 2xx →
/// `bad_response`; 429 → degraded, `rate_limited`; anything else →
/// `bad_status` (3xx: `MESHHOOK_URL` is not the address that answers). The
/// log text has the status and the start of the body, never a header.
fn answer_verdict(status: StatusCode, body: &[u8]) -> Verdict {
    let start = &body[..body.len().min(LOGGED_BODY)];
    let text = format!("HTTP {}: {:?}", status.as_u16(), String::from_utf8_lossy(start));
    let reason = match status.as_u16() {
        500 => Reason::AppError,
        502..=504 => Reason::Unreachable,
        404 => Reason::NotMeshhook,
        429 => return Verdict::degraded(Reason::RateLimited, text),
        200..=299 => Reason::BadResponse,
        _ => Reason::BadStatus,
    };
    Verdict::unhealthy(reason, text)
}

/// 16 random hex digits: a slug no workflow has, new at each evaluation.
fn random_hex() -> Result<String, Failure> {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Failure::new(Reason::InternalError, "no randomness for the probe's slug"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn settings_of(url: Option<&str>) -> Result<AppSettings, ConfigError> {
        let pairs: Vec<(&str, &str)> = url.map(|u| ("MESHHOOK_URL", u)).into_iter().collect();
        AppSettings::from_source(&crate::env::pairs(&pairs))
    }

    #[test]
    fn the_url_is_required_and_checked() {
        assert_eq!(settings_of(Some("https://meshhook.example.com")).unwrap().url.as_str(), "https://meshhook.example.com/");
        assert_eq!(
            settings_of(Some("http://meshhook.railway.internal:3000/base")).unwrap().url.as_str(),
            "http://meshhook.railway.internal:3000/base/"
        );
        for bad in [
            None,
            Some("meshhook.example.com"),
            Some("ftp://meshhook.example.com"),
            Some("https://user:pw@meshhook.example.com"),
            Some("https://meshhook.example.com/?x=1"),
            Some("https://meshhook.example.com/#top"),
        ] {
            let error = settings_of(bad).unwrap_err();
            assert_eq!(error.variable, "MESHHOOK_URL", "{bad:?}");
            assert!(!error.to_string().contains("pw"), "{error}");
        }
    }

    #[test]
    fn every_answer_class_has_its_reason() {
        let of = |status: u16, body: &[u8]| {
            let verdict = answer_verdict(StatusCode::from_u16(status).unwrap(), body);
            (verdict.status, verdict.reason.unwrap())
        };
        assert_eq!(of(500, br#"{"message":"Internal Error"}"#), (Status::Unhealthy, Reason::AppError));
        for edge in [502, 503, 504] {
            assert_eq!(of(edge, b"Application failed to respond"), (Status::Unhealthy, Reason::Unreachable));
        }
        assert_eq!(of(404, b"Application not found"), (Status::Unhealthy, Reason::NotMeshhook));
        assert_eq!(of(202, b""), (Status::Unhealthy, Reason::BadResponse));
        assert_eq!(of(301, b""), (Status::Unhealthy, Reason::BadStatus));
        assert_eq!(of(403, b"Cross-site POST form submissions are forbidden"), (Status::Unhealthy, Reason::BadStatus));
        assert_eq!(of(429, b""), (Status::Degraded, Reason::RateLimited));
        let long = vec![b'x'; 1000];
        let text = answer_verdict(StatusCode::INTERNAL_SERVER_ERROR, &long).text.unwrap();
        assert!(text.len() < LOGGED_BODY + 20, "{text}");
    }

    #[test]
    fn probe_slugs_are_new_each_time() {
        let (a, b) = (random_hex().unwrap(), random_hex().unwrap());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
