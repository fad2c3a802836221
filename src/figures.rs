//! What a component measures, beside its verdict: each [`Figure`] under
//! the name each metrics output knows it by (CloudWatch EMF in Lambda mode,
//! Prometheus in serve mode), its [`Unit`], and the figures of one
//! evaluation as [`MetricSet`]s. A leaf: it imports nothing of this crate.

/// The unit of a figure: its CloudWatch EMF unit (a Prometheus name ends
/// in its base unit instead: `_seconds`, `_bytes`, `_ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Bytes,
    Percent,
    /// A fraction from 0 to 1 (Prometheus only; EMF uses `Percent`).
    Ratio,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Bytes => "Bytes",
            Self::Percent => "Percent",
            Self::Ratio => "None",
        }
    }
}

/// One figure a component measures, under the name each metrics output
/// knows it by: CloudWatch EMF in Lambda mode, Prometheus in serve mode.
/// A component lists its figures (`Component::figures`) so that the
/// Prometheus exposition can declare them before the first evaluation.
#[derive(Debug, PartialEq, Eq)]
pub struct Figure {
    /// EMF metric name; `None`: not sent to CloudWatch (every name and
    /// dimension value there is a custom metric the operator pays for).
    pub emf: Option<&'static str>,
    /// Prometheus name after the `meshhook_health_` prefix, ending in its
    /// base unit; `None`: not exposed there.
    pub prometheus: Option<&'static str>,
    /// The Prometheus label that carries the set's dimension value
    /// (`queue`, `table`, `kind`); `None` when the name says whose it is
    /// (the database's, the runs').
    pub label: Option<&'static str>,
    /// Prometheus `HELP` text: one sentence, no final period.
    pub help: &'static str,
    pub unit: Unit,
}

/// Figures of one evaluation that share one dimension value — one EMF
/// document each (a document has one value per dimension), one label value
/// in Prometheus. The value always comes from configuration (a queue or
/// table name, a worker kind listed in the settings), never from what a
/// dependency answered.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSet {
    /// Dimension name and value, e.g. `("Queue", "workflow_jobs")`.
    pub dimension: (&'static str, String),
    pub values: Vec<(&'static Figure, f64)>,
}
