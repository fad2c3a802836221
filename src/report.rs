//! The JSON bodies (CONTRACT §3, §4). The public body carries statuses, the
//! version and a time — never hosts, users, error text or latencies. The
//! verbose body adds latencies, reasons and counts, still no error text.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::checks::{Component, Facts, Reason, Status};
use crate::health::{ComponentReport, Report};
use crate::telemetry::round_ms;

#[derive(Serialize)]
struct Body<'a> {
    status: Status,
    version: &'a str,
    details: PerComponent<Status>,
    checked_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<PerComponent<CheckBody<'a>>>,
}

/// A map with one optional entry per component, in the fixed order.
#[derive(Serialize)]
struct PerComponent<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supabase: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<T>,
}

impl<T> PerComponent<T> {
    fn from_report<'r>(report: &'r Report, f: impl Fn(&'r ComponentReport) -> T) -> Self {
        let entry = |c: Component| report.get(c).map(&f);
        Self {
            database: entry(Component::Database),
            supabase: entry(Component::Supabase),
            workers: entry(Component::Workers),
        }
    }
}

#[derive(Serialize)]
struct CheckBody<'a> {
    status: Status,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Services<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alive: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stale: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_alive: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
}

/// Services as a JSON object in configured order.
struct Services<'a>(&'a [(String, Status)]);

impl Serialize for Services<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, status) in self.0 {
            map.serialize_entry(name, status)?;
        }
        map.end()
    }
}

fn check_body(c: &ComponentReport) -> CheckBody<'_> {
    let (services, workers) = match &c.outcome.facts {
        Facts::Services(s) => (Some(Services(s)), None),
        Facts::Workers {
            alive,
            stale,
            min_alive,
        } => (None, Some((*alive, *stale, *min_alive))),
        Facts::None => (None, None),
    };
    CheckBody {
        status: c.outcome.status,
        latency_ms: round_ms(c.latency),
        services,
        alive: workers.map(|w| w.0),
        stale: workers.map(|w| w.1),
        min_alive: workers.map(|w| w.2),
        reason: c.outcome.reason,
    }
}

/// The JSON body; `verbose` adds the `checks` object.
pub fn render(report: &Report, version: &str, verbose: bool) -> String {
    let body = Body {
        status: report.status,
        version,
        details: PerComponent::from_report(report, |c| c.outcome.status),
        checked_at: humantime::format_rfc3339_millis(report.checked_at).to_string(),
        checks: verbose.then(|| PerComponent::from_report(report, check_body)),
    };
    // Infallible: every field serialises to JSON (no maps with non-string keys,
    // no non-finite floats: latencies are finite by construction).
    serde_json::to_string(&body).expect("health body serialises")
}

/// The `/health/live` body: no dependency touched.
pub fn live(version: &str) -> String {
    #[derive(Serialize)]
    struct Live<'a> {
        status: Status,
        version: &'a str,
    }
    // Infallible: two plain string fields.
    serde_json::to_string(&Live {
        status: Status::Healthy,
        version,
    })
    .expect("live body serialises")
}

/// `{"error": "..."}` for 404/405.
pub fn error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
