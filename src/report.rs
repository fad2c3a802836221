//! The result of one evaluation ([`Report`]) and its JSON bodies. The public
//! body carries statuses, the version and a time — never hosts, users, error
//! text or latencies. The verbose body adds latencies, reasons and each
//! component's facts (counts), still no error text.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::component::Enabled;
use crate::outcome::{Aggregate, CheckOutcome, Reason, Status, Verdict, UNKNOWN_VERSION};

/// One component's result within a report.
#[derive(Debug, Clone)]
pub struct ComponentReport {
    pub enabled: Enabled,
    pub outcome: CheckOutcome,
    pub latency: Duration,
}

impl ComponentReport {
    pub fn name(&self) -> &'static str {
        self.enabled.name()
    }
}

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    /// In registry order.
    pub components: Vec<ComponentReport>,
    /// When the results were measured (shown as `checked_at`).
    pub checked_at: SystemTime,
    /// The same moment on tokio's clock, for the cache's age.
    pub(crate) measured_at: Instant,
}

impl Report {
    /// A report of `components` measured at `checked_at`, status aggregated.
    pub fn new(components: Vec<ComponentReport>, checked_at: SystemTime) -> Report {
        Report {
            status: aggregate(&components),
            components,
            checked_at,
            measured_at: Instant::now(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ComponentReport> {
        self.components.iter().find(|c| c.name() == name)
    }

    /// The MeshHook version a component saw running, if any did.
    pub fn meshhook_version(&self) -> Option<&str> {
        self.components
            .iter()
            .find_map(|c| c.outcome.meshhook_version.as_deref())
    }
}

/// The public `version`: `MESHHOOK_VERSION` if set, else what the report's
/// components saw running, else `"unknown"` — never this checker's own.
pub fn public_version<'a>(configured: Option<&'a str>, report: Option<&'a Report>) -> &'a str {
    configured
        .or_else(|| report.and_then(Report::meshhook_version))
        .unwrap_or(UNKNOWN_VERSION)
}

/// Unhealthy if a critical component is; else degraded if any component is
/// degraded or a non-critical one is unhealthy; else healthy. A private
/// component counts for nothing here: the public status never tells what
/// it found.
pub fn aggregate(components: &[ComponentReport]) -> Status {
    let mut all = Aggregate::default();
    for c in components.iter().filter(|c| !c.enabled.private()) {
        let part = Verdict {
            status: c.outcome.status(),
            ..Verdict::default()
        };
        if c.enabled.critical {
            all.add(part);
        } else {
            all.add_noncritical(part);
        }
    }
    all.status()
}

#[derive(Serialize)]
struct Body<'a> {
    status: Status,
    version: &'a str,
    details: PerComponent<'a, Details>,
    checked_at: String,
    /// This binary's version: verbose body only.
    #[serde(skip_serializing_if = "Option::is_none")]
    checker_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<PerComponent<'a, Verbose>>,
}

/// A JSON object with one entry per component, in report order.
struct PerComponent<'a, K>(&'a [ComponentReport], K);

/// `details`: each component's status.
struct Details;
/// `checks`: each component's status, latency, facts and reason.
struct Verbose;

impl Serialize for PerComponent<'_, Details> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for c in self.0.iter().filter(|c| !c.enabled.private()) {
            map.serialize_entry(c.name(), &c.outcome.verdict.status)?;
        }
        map.end()
    }
}

impl Serialize for PerComponent<'_, Verbose> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for c in self.0 {
            map.serialize_entry(c.name(), &CheckBody(c))?;
        }
        map.end()
    }
}

/// One entry of `checks`: `status`, `latency_ms`, the component's facts in
/// its order, then `reason` when not healthy.
struct CheckBody<'a>(&'a ComponentReport);

impl Serialize for CheckBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("status", &c.outcome.verdict.status)?;
        map.serialize_entry("latency_ms", &round_ms(c.latency))?;
        if c.enabled.private() {
            map.serialize_entry("private", &true)?;
        }
        for (key, value) in &c.outcome.facts {
            map.serialize_entry(key, value)?;
        }
        if let Some(reason) = c.outcome.verdict.reason {
            map.serialize_entry("reason", &reason)?;
        }
        map.end()
    }
}

/// Milliseconds with one decimal, as shown in logs and the verbose body.
pub fn round_ms(d: std::time::Duration) -> f64 {
    (d.as_micros() as f64 / 100.0).round() / 10.0
}

/// The JSON body. Its `version` is [`public_version`] of `configured`
/// (`MESHHOOK_VERSION`) and this report; `verbose` adds `checker_version`
/// and `checks`.
pub fn render(report: &Report, configured: Option<&str>, verbose: bool) -> String {
    let body = Body {
        status: report.status,
        version: public_version(configured, Some(report)),
        details: PerComponent(&report.components, Details),
        checked_at: humantime::format_rfc3339_millis(report.checked_at).to_string(),
        checker_version: verbose.then_some(env!("CARGO_PKG_VERSION")),
        checks: verbose.then_some(PerComponent(&report.components, Verbose)),
    };
    // Infallible: every field serialises to JSON (string keys only, no
    // non-finite floats: latencies are finite by construction).
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

/// Every component unhealthy, for when no evaluation result exists.
pub fn failed(components: &[Enabled], why: &str) -> Report {
    let components = components
        .iter()
        .map(|&enabled| ComponentReport {
            enabled,
            outcome: CheckOutcome::from(Verdict::unhealthy(Reason::InternalError, why)),
            latency: Duration::ZERO,
        })
        .collect();
    Report::new(components, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Component;

    fn part(name: &'static str, status: Status, critical: bool) -> ComponentReport {
        ComponentReport {
            enabled: Enabled::for_test(name, critical),
            outcome: CheckOutcome::from(Verdict {
                status,
                ..Verdict::default()
            }),
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn aggregation_follows_the_rules() {
        use Status::*;
        let all = |s: [Status; 3], critical: [bool; 3]| {
            aggregate(&[
                part("database", s[0], critical[0]),
                part("supabase", s[1], critical[1]),
                part("workers", s[2], critical[2]),
            ])
        };
        let every = [true; 3];
        assert_eq!(all([Healthy; 3], every), Healthy);
        assert_eq!(all([Healthy, Degraded, Healthy], every), Degraded);
        assert_eq!(all([Unhealthy, Degraded, Healthy], every), Unhealthy);
        assert_eq!(
            all([Healthy, Unhealthy, Healthy], [true, false, true]),
            Degraded
        );
        assert_eq!(
            all([Healthy, Unhealthy, Unhealthy], [true, false, true]),
            Unhealthy
        );
        assert_eq!(aggregate(&[]), Healthy);
    }

    #[test]
    fn a_private_component_is_left_out_of_the_public_body_and_status() {
        let private: &'static Component = Box::leak(Box::new(Component {
            name: "secretive",
            private: true,
            ..*crate::checks::find("workers").unwrap()
        }));
        let mut hidden = part("database", Status::Healthy, true);
        hidden.enabled = Enabled {
            component: private,
            critical: true,
        };
        hidden.outcome.verdict = Verdict::unhealthy(Reason::QueryFailed, "found something");
        let with = Report::new(
            vec![part("database", Status::Healthy, true), hidden],
            SystemTime::UNIX_EPOCH,
        );
        let without = Report::new(
            vec![part("database", Status::Healthy, true)],
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(with.status, Status::Healthy);
        assert_eq!(render(&with, None, false), render(&without, None, false));
        let verbose: serde_json::Value = serde_json::from_str(&render(&with, None, true)).unwrap();
        assert_eq!(
            verbose["details"],
            serde_json::json!({"database": "healthy"})
        );
        assert_eq!(verbose["checks"]["secretive"]["private"], true);
        assert_eq!(verbose["checks"]["secretive"]["status"], "unhealthy");
    }

    #[test]
    fn latency_keeps_one_decimal() {
        assert_eq!(round_ms(Duration::from_micros(31_249)), 31.2);
        assert_eq!(round_ms(Duration::from_micros(700)), 0.7);
    }

    #[test]
    fn bodies_list_components_in_report_order_with_facts_and_reason() {
        let mut workers = part("workers", Status::Degraded, true);
        workers.outcome.verdict.reason = Some(Reason::StaleWorkers);
        workers.outcome.facts = vec![("alive", serde_json::json!(2))];
        let report = Report::new(
            vec![part("database", Status::Healthy, true), workers],
            SystemTime::UNIX_EPOCH,
        );
        let public = render(&report, Some("1.4.2"), false);
        assert_eq!(
            public,
            r#"{"status":"degraded","version":"1.4.2","details":{"database":"healthy","workers":"degraded"},"checked_at":"1970-01-01T00:00:00.000Z"}"#
        );
        let verbose: serde_json::Value =
            serde_json::from_str(&render(&report, Some("1.4.2"), true)).unwrap();
        assert_eq!(
            verbose["checks"]["workers"],
            serde_json::json!({"status":"degraded","latency_ms":0.0,"alive":2,"reason":"stale_workers"})
        );
    }
}
