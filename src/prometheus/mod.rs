//! Serve mode's `GET /metrics`: each evaluation's figures in Prometheus's
//! exposition formats, through the official client crate.
//!
//! An [`EvaluationListener`], like the EMF lines of Lambda mode: every
//! finished evaluation's report (the one the evaluator's cache keeps) is
//! kept for the next scrape, its check durations observed and the
//! evaluation counted by its status. A scrape first asks the evaluator as
//! a request does (`router.rs`: the cached result, else the evaluation in
//! flight, else a new one when the cache is stale), so it never starts an
//! evaluation beside one that runs; it then encodes what the last
//! evaluation left, through a collector of the crate's registry. The
//! listener's update and the encoding take the same lock, so a scrape never
//! shows half of one evaluation and half of the next.
//!
//! Names follow Prometheus's conventions: the `meshhook_health_` prefix,
//! base units at the end (`_seconds`, `_bytes`, `_ratio`), `_total` on the
//! counter. Every label value comes from configuration — a component,
//! queue or table name, a listed worker kind — or is a status; never a
//! host, a user or error text.

use std::sync::Arc;

use http::HeaderValue;
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::ComponentConfig;
use crate::evaluator::EvaluationListener;
use crate::figures::Figure;
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

/// The metrics of this process and the registry that encodes them.
pub struct Exposition {
    registry: Registry,
    metrics: Arc<Metrics>,
}

/// What the evaluations left, encoded in a fixed order (components in
/// report order, statuses best first) rather than a hash map's: a scrape
/// reads like the `/health` body.
#[derive(Debug)]
struct Metrics {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The enabled components' figures that Prometheus shows, in order.
    declared: Vec<&'static Figure>,
    /// Check durations by component, in report order.
    durations: Vec<(&'static str, Histogram)>,
    /// Evaluations by overall status, in [`Status::ALL`]'s order.
    evaluations: [Counter; 3],
    /// The last evaluation (the report the evaluator's cache keeps).
    last: Option<Arc<Report>>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Exposition {
    /// The metrics of `components` (their figures included).
    pub fn new(components: &[ComponentConfig]) -> Self {
        let declared = components
            .iter()
            .flat_map(|c| c.enabled.component.figures)
            .filter(|f| f.prometheus.is_some())
            .collect();
        let state = State {
            declared,
            durations: Vec::new(),
            evaluations: Default::default(),
            last: None,
        };
        let metrics = Arc::new(Metrics {
            state: Mutex::new(state),
        });
        let mut registry = Registry::with_prefix("meshhook_health");
        registry.register_collector(Box::new(metrics.clone()));
        Self { registry, metrics }
    }

    /// The registry as text: OpenMetrics (ending in `# EOF`) or the
    /// classic format.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::with_capacity(8192);
        let encoded = if openmetrics {
            text::encode(&mut out, &self.registry)
        } else {
            prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail, and every label value is
        // escaped by the crate; an error here would be the crate's bug.
        if encoded.is_err() {
            tracing::error!("metrics could not be encoded");
        }
        out
    }
}

impl EvaluationListener for Exposition {
    fn evaluated(&self, report: &Arc<Report>) {
        let mut state = self.metrics.state.lock();
        let index = Status::ALL.iter().position(|s| *s == report.status);
        if let Some(counter) = index.and_then(|i| state.evaluations.get(i)) {
            counter.inc();
        }
        for component in &report.components {
            let seconds = component.latency.as_secs_f64();
            let known = state
                .durations
                .iter()
                .find(|(name, _)| *name == component.name());
            match known {
                Some((_, histogram)) => histogram.observe(seconds),
                None => {
                    let histogram = Histogram::new(DURATION_BUCKETS);
                    histogram.observe(seconds);
                    state.durations.push((component.name(), histogram));
                }
            }
        }
        state.last = Some(report.clone());
    }
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.state.lock();
        if let Some(last) = &state.last {
            encode_statuses(&mut encoder, last)?;
        }
        let mut family = encoder.encode_descriptor(
            "check_duration_seconds",
            "How long each component's check took, deadline included",
            None,
            MetricType::Histogram,
        )?;
        for (component, histogram) in &state.durations {
            let series = labels(&[("component", component)]);
            histogram.encode(family.encode_family(&series)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "evaluations",
            "Evaluations run (not answers served from the cache), by overall status",
            None,
            MetricType::Counter,
        )?;
        for (status, counter) in Status::ALL.iter().zip(&state.evaluations) {
            let series = labels(&[("status", status.as_str())]);
            counter.encode(family.encode_family(&series)?)?;
        }
        if let Some(last) = &state.last {
            for declared in &state.declared {
                encode_figure(&mut encoder, declared, last)?;
            }
        }
        Ok(())
    }
}

/// `status` and `component_status`: 1 for the current status, 0 for the
/// other two.
fn encode_statuses(encoder: &mut DescriptorEncoder, last: &Report) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "status",
        "Overall status of MeshHook: 1 for the current one (healthy, degraded or unhealthy), 0 for the other two",
        None,
        MetricType::Gauge,
    )?;
    for status in Status::ALL {
        let series = labels(&[("status", status.as_str())]);
        let value = ConstGauge::new(i64::from(last.status == status));
        value.encode(family.encode_family(&series)?)?;
    }
    let mut family = encoder.encode_descriptor(
        "component_status",
        "Status of each component: 1 for the current one (healthy, degraded or unhealthy), 0 for the other two",
        None,
        MetricType::Gauge,
    )?;
    for component in &last.components {
        for status in Status::ALL {
            let series = labels(&[("component", component.name()), ("status", status.as_str())]);
            let value = ConstGauge::new(i64::from(component.outcome.verdict.status == status));
            value.encode(family.encode_family(&series)?)?;
        }
    }
    Ok(())
}

/// One declared figure's family with the last evaluation's samples of it;
/// nothing at all when it has none (a reading that could not be made).
fn encode_figure(
    encoder: &mut DescriptorEncoder,
    declared: &Figure,
    last: &Report,
) -> Result<(), std::fmt::Error> {
    let Some(name) = declared.prometheus else {
        return Ok(());
    };
    let mut samples = last
        .components
        .iter()
        .flat_map(|c| &c.outcome.metrics)
        .flat_map(|set| {
            set.values
                .iter()
                .map(move |(figure, value)| (figure, set, value))
        })
        .filter(|(figure, ..)| figure.prometheus == Some(name))
        .peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, declared.help, None, MetricType::Gauge)?;
    for (figure, set, value) in samples {
        let series = match figure.label {
            Some(label) => labels(&[(label, set.dimension.1.as_str())]),
            None => Labels::new(),
        };
        ConstGauge::new(*value).encode(family.encode_family(&series)?)?;
    }
    Ok(())
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
