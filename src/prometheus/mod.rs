//! Serve mode's `GET /metrics`: each evaluation's figures in Prometheus's
//! exposition formats, through the official client crate.
//!
//! An [`EvaluationListener`], like the EMF lines of Lambda mode: every
//! finished evaluation sets the status gauges and the components' figures,
//! observes each component's check duration and counts the evaluation by
//! its status. A scrape reads the evaluator as a request does (`http.rs`:
//! the cached result, or the evaluation in flight), so it never starts an
//! evaluation of its own beside one that runs; it then encodes what the
//! last evaluation left. Both happen under one lock, so a scrape never
//! shows half of one evaluation and half of the next.
//!
//! Names follow Prometheus's conventions: the `meshhook_health_` prefix,
//! base units at the end (`_seconds`, `_bytes`, `_ratio`), `_total` on the
//! counter. Every label value comes from configuration — a component,
//! queue or table name, a listed worker kind — or is a status; never a
//! host, a user or error text.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use http::HeaderValue;
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::ComponentConfig;
use crate::evaluator::EvaluationListener;
use crate::outcome::Status;
use crate::report::Report;

/// The `Content-Type` of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of the classic Prometheus text format (0.0.4).
pub const CLASSIC: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the check-duration buckets: from a cached
/// connection's round trip to a cold start's TLS handshakes, up to the
/// largest deadline worth having.
const DURATION_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
];

type Labels = Vec<(&'static str, String)>;
type Figures = Family<Labels, Gauge<f64, AtomicU64>>;
type Durations = Family<Labels, Histogram, fn() -> Histogram>;

/// The metrics of this process and the registry that encodes them.
pub struct Exposition {
    inner: Mutex<Metrics>,
}

struct Metrics {
    registry: Registry,
    status: Family<Labels, Gauge>,
    component_status: Family<Labels, Gauge>,
    durations: Durations,
    evaluations: Family<Labels, Counter>,
    /// The enabled components' figures, by Prometheus name.
    figures: HashMap<&'static str, Figures>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Exposition {
    /// Declares the metrics of `components` (their figures included), so
    /// that every name is listed with its HELP and TYPE from the first
    /// scrape on.
    pub fn new(components: &[ComponentConfig]) -> Self {
        let mut registry = Registry::with_prefix("meshhook_health");
        let status = Family::<Labels, Gauge>::default();
        registry.register(
            "status",
            "Overall status of MeshHook: 1 for the current one (healthy, degraded or unhealthy), 0 for the other two",
            status.clone(),
        );
        let component_status = Family::<Labels, Gauge>::default();
        registry.register(
            "component_status",
            "Status of each component: 1 for the current one (healthy, degraded or unhealthy), 0 for the other two",
            component_status.clone(),
        );
        let durations = Durations::new_with_constructor(duration_histogram);
        registry.register(
            "check_duration_seconds",
            "How long each component's check took, deadline included",
            durations.clone(),
        );
        let evaluations = Family::<Labels, Counter>::default();
        registry.register(
            "evaluations",
            "Evaluations run (not answers served from the cache), by overall status",
            evaluations.clone(),
        );
        for status in Status::ALL {
            let _ = evaluations.get_or_create(&labels(&[("status", status.as_str())]));
        }
        let mut figures = HashMap::new();
        for configured in components {
            let _ = durations.get_or_create(&labels(&[("component", configured.name())]));
            for figure in configured.component.figures {
                let Some(name) = figure.prometheus else {
                    continue;
                };
                let family = Figures::default();
                registry.register(name, figure.help, family.clone());
                figures.insert(name, family);
            }
        }
        let metrics = Metrics {
            registry,
            status,
            component_status,
            durations,
            evaluations,
            figures,
        };
        Self {
            inner: Mutex::new(metrics),
        }
    }

    /// The registry as text: OpenMetrics (ending in `# EOF`) or the
    /// classic format.
    pub fn encode(&self, openmetrics: bool) -> String {
        let metrics = lock(&self.inner);
        let mut out = String::with_capacity(4096);
        let encoded = if openmetrics {
            text::encode(&mut out, &metrics.registry)
        } else {
            prometheus_text::encode(&mut out, &metrics.registry)
        };
        // Writing into a String cannot fail, and every label value is
        // escaped by the crate; an error here would be the crate's bug.
        if encoded.is_err() {
            tracing::error!("metrics could not be encoded");
        }
        out
    }
}

/// The lock is held to update or encode a few dozen values; nothing panics
/// under it, and a poisoned lock still holds whole values.
fn lock(metrics: &Mutex<Metrics>) -> std::sync::MutexGuard<'_, Metrics> {
    metrics
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EvaluationListener for Exposition {
    fn evaluated(&self, report: &Report) {
        let metrics = lock(&self.inner);
        for status in Status::ALL {
            let current = i64::from(report.status == status);
            let state = labels(&[("status", status.as_str())]);
            metrics.status.get_or_create(&state).set(current);
        }
        metrics
            .evaluations
            .get_or_create(&labels(&[("status", report.status.as_str())]))
            .inc();
        // A figure this evaluation could not read disappears rather than
        // keep the last value it had.
        for family in metrics.figures.values() {
            family.clear();
        }
        for component in &report.components {
            for status in Status::ALL {
                let current = i64::from(component.outcome.status == status);
                let state = labels(&[("component", component.name), ("status", status.as_str())]);
                metrics.component_status.get_or_create(&state).set(current);
            }
            let name = labels(&[("component", component.name)]);
            let seconds = component.latency.as_secs_f64();
            metrics.durations.get_or_create(&name).observe(seconds);
            for set in &component.outcome.metrics {
                for (figure, value) in &set.values {
                    let family = figure.prometheus.and_then(|name| metrics.figures.get(name));
                    let Some(family) = family else { continue };
                    let series = match figure.label {
                        Some(label) => labels(&[(label, set.dimension.1.as_str())]),
                        None => Labels::new(),
                    };
                    family.get_or_create(&series).set(*value);
                }
            }
        }
    }
}

/// Whether `Accept` prefers OpenMetrics text to the classic format:
/// `application/openmetrics-text` with a quality above zero and at least
/// that of `text/plain` (or a wildcard). Prometheus asks for OpenMetrics
/// first; a client that names neither gets the classic format.
pub fn wants_openmetrics(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|a| a.to_str().ok()) else {
        return false;
    };
    let (mut openmetrics, mut classic) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
            "text/plain" | "text/*" | "*/*" => classic = classic.max(quality),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= classic
}

#[cfg(test)]
mod tests;
