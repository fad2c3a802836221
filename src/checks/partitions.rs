//! The `partitions` component (opt-in): whether MeshHook's event log can
//! still be written tomorrow.
//!
//! `workflow_events` is range-partitioned by month with no default
//! partition, and new partitions appear only where something creates them.
//! When time runs past the last partition, every insert into the event log
//! fails — every webhook. Per table, from the catalog alone (no scan of the
//! data): the table must be range-partitioned on one `timestamptz`,
//! `timestamp` or `date` column; a `DEFAULT` partition covers every time;
//! otherwise the table is *covered until* the upper bound of the unbroken
//! chain of partitions that starts with the one containing `now()`.
//!
//! All tables are read by one unnamed statement (pooler-safe; the names are
//! its one parameter), with
//! the database's clock. Partition bounds come from `pg_get_expr` over
//! `pg_class.relpartbound`, whose literals are cast back to `timestamptz`
//! in the same session, so their time zone is the one `now()` uses.

use std::time::{Duration, UNIX_EPOCH};

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio_postgres::types::Type;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::names::check_table_name;
use crate::db::{Planned, Statement};
use crate::env::{list, number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, Reason, Verdict};
use crate::figures::{Figure, MetricSet, Unit};

pub const COMPONENT: Component = Component {
    name: "partitions",
    enabled_by_default: false,
    critical_by_default: true,
    private: false,
    uses_postgres: true,
    read_settings: read::<PartitionsSettings>,
    figures: &[COVERED],
};

/// How far ahead a table's partitions reach, by table.
const COVERED: Figure = Figure {
    emf: Some("PartitionCoveredSeconds"),
    prometheus: Some("partitions_covered_seconds"),
    label: Some("table"),
    help: "How far ahead of now the table's partitions accept rows, by table",
    unit: Unit::Seconds,
};

/// `PARTITIONS_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionsSettings {
    /// Table names as configured (optionally `schema.`-qualified).
    pub tables: Vec<String>,
    pub ahead_secs: u64,
}

impl Settings for PartitionsSettings {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let tables = list(
            env.get("PARTITIONS_TABLES")
                .as_deref()
                .unwrap_or("workflow_events"),
        );
        if tables.is_empty() {
            return Err(ConfigError::new("PARTITIONS_TABLES", "names no table"));
        }
        for table in &tables {
            check_table_name("PARTITIONS_TABLES", table)?;
        }
        let ahead_secs = number(env, "PARTITIONS_AHEAD_SECS", 604_800, 1, 366 * 86_400)?;
        Ok(Self { tables, ahead_secs })
    }

    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        // The same parameter for the statement and its function.
        let bound =
            |sql: &'static str| Statement::new(sql).bind(self.tables.clone(), Type::TEXT_ARRAY);
        Ok(Box::new(PartitionsCheck {
            inline: bound(STATEMENT),
            statement: Planned::new(
                FUNCTION,
                bound("SELECT * FROM monitoring.partitions_readings_v1($1)"),
            ),
            settings: self,
        }))
    }
}

/// The function `migrate` creates (migrations/0006) to run [`STATEMENT`]
/// with a plan the server keeps ([`Planned`]).
pub const FUNCTION: &str = "monitoring.partitions_readings_v1(text[])";

/// The one statement, over the table names in `$1`: a row per table, in
/// that order, with its name, its kind (`missing`, `unsuitable` — not
/// range-partitioned on one time column —, `default` — a default partition
/// exists — or `ranges`), the database's `now()` and, for `ranges`, every
/// partition's bounds as two aligned arrays of epoch seconds, the ranges'
/// starts and ends (`-Infinity`/`Infinity` for MINVALUE/MAXVALUE). The
/// chain is followed in Rust: a recursive query costs more to plan, and an
/// unnamed statement is planned every time. `pg_get_expr` runs once per
/// partition (the `OFFSET 0` keeps the planner from repeating it per use),
/// and only for a table range-partitioned on one time column: its bound
/// reads `FOR VALUES FROM ('…') TO ('…')`, each side a quoted literal of
/// the key's type (which never holds a quote) or MINVALUE / MAXVALUE, so
/// the literals lie between its quotes (`split_part`, a fraction of a
/// regular expression's cost per partition).
const STATEMENT: &str = "SELECT t.name, CASE WHEN t.r IS NULL THEN 'missing' \
       WHEN pt.partrelid IS NULL OR pt.partstrat <> 'r' OR pt.partnatts <> 1 \
         OR a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) \
         THEN 'unsuitable' \
       WHEN pt.partdefid <> 0 THEN 'default' ELSE 'ranges' END, \
     extract(epoch FROM now())::float8, \
     ranges.starts, ranges.ends \
   FROM (SELECT u.name, u.n, to_regclass(u.name) AS r \
           FROM unnest($1::text[]) WITH ORDINALITY AS u(name, n)) t \
   LEFT JOIN pg_partitioned_table pt ON pt.partrelid = t.r \
   LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] \
   LEFT JOIN LATERAL (SELECT \
        array_agg(CASE WHEN b LIKE 'FOR VALUES FROM (MINVALUE)%' THEN '-Infinity'::float8 \
                       ELSE extract(epoch FROM split_part(b, '''', 2)::timestamptz)::float8 END) AS starts, \
        array_agg(CASE WHEN b LIKE '%TO (MAXVALUE)' THEN 'Infinity'::float8 \
                       WHEN b LIKE 'FOR VALUES FROM (MINVALUE)%' \
                         THEN extract(epoch FROM split_part(b, '''', 2)::timestamptz)::float8 \
                       ELSE extract(epoch FROM split_part(b, '''', 4)::timestamptz)::float8 END) AS ends \
      FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i \
            JOIN pg_class c ON c.oid = i.inhrelid \
            WHERE i.inhparent = t.r AND pt.partstrat = 'r' AND pt.partnatts = 1 \
              AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) \
            OFFSET 0) bounds \
      WHERE b LIKE 'FOR VALUES FROM %') ranges ON true \
   ORDER BY t.n";

/// What the catalog says of one table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coverage {
    /// Missing, or not range-partitioned on one time column.
    Unsuitable,
    /// Every time to come is covered: a default partition, or a chain from
    /// now that ends in `MAXVALUE`.
    Unbounded,
    /// No partition contains now.
    None,
    /// Covered until this epoch second; `now` is the database's clock.
    Until { until: f64, now: f64 },
}

struct PartitionsCheck {
    /// [`STATEMENT`], sent inline on the first evaluation.
    inline: Statement,
    /// Through [`FUNCTION`] when it can be called.
    statement: Planned,
    settings: Arc<PartitionsSettings>,
}

impl Check for PartitionsCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let rows = self.statement.query(context.postgres()?, &self.inline).await?;
        let tables = rows
            .iter()
            .map(table_coverage)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Failure::new(Reason::BadResponse, "unexpected partitions row"))?;
        Ok(judge_coverage(&tables, &self.settings))
    }
}

/// One row per table, by type: its name and what the catalog says.
fn table_coverage(row: &tokio_postgres::Row) -> Result<(String, Coverage), tokio_postgres::Error> {
    let kind: String = row.try_get(1)?;
    let coverage = match kind.as_str() {
        "default" => Coverage::Unbounded,
        "ranges" => {
            let now: f64 = row.try_get(2)?;
            let starts: Option<Vec<f64>> = row.try_get(3)?;
            let ends: Option<Vec<f64>> = row.try_get(4)?;
            let ranges = starts.unwrap_or_default().into_iter().zip(ends.unwrap_or_default());
            coverage(ranges.collect(), now)
        }
        // "missing" or "unsuitable"
        _ => Coverage::Unsuitable,
    };
    Ok((row.try_get(0)?, coverage))
}

/// Partitions `[from, to)` (non-overlapping, as Postgres guarantees) and
/// the database's `now`: the upper bound of the unbroken chain that starts
/// with the partition containing now.
pub fn coverage(mut ranges: Vec<(f64, f64)>, now: f64) -> Coverage {
    ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(start) = ranges.iter().position(|&(from, to)| from <= now && now < to) else {
        return Coverage::None;
    };
    let mut until = ranges[start].1;
    for &(from, to) in &ranges[start + 1..] {
        if from != until {
            break;
        }
        until = to;
    }
    if until.is_infinite() {
        return Coverage::Unbounded;
    }
    Coverage::Until { until, now }
}

/// Per table: missing or unsuitable → unhealthy (`schema_missing`); no
/// partition contains now → unhealthy (`partition_missing`); covered for
/// less than `ahead_secs` → degraded (`partition_ending`); else healthy.
/// The worst table decides.
pub(crate) fn judge_coverage(tables: &[(String, Coverage)], settings: &PartitionsSettings) -> CheckOutcome {
    let mut all = Aggregate::default();
    let mut metrics = Vec::new();
    let mut entries = Map::new();
    for (table, coverage) in tables {
        all.add(table_verdict(table, *coverage, settings));
        if let Some(entry) = coverage.entry() {
            entries.insert(table.clone(), entry);
        }
        if let Some(secs) = coverage.covered_secs() {
            metrics.push(MetricSet {
                dimension: ("Table", table.clone()),
                values: vec![(&COVERED, secs as f64)],
            });
        }
    }
    CheckOutcome::from(all.verdict())
        .with_facts(vec![("tables", Value::Object(entries))])
        .with_metrics(metrics)
}

fn table_verdict(table: &str, coverage: Coverage, settings: &PartitionsSettings) -> Verdict {
    match coverage {
        Coverage::Unsuitable => Verdict::unhealthy(
            Reason::SchemaMissing,
            format!("{table} is missing or not range-partitioned on one time column"),
        ),
        Coverage::None => Verdict::unhealthy(
            Reason::PartitionMissing,
            format!("{table}: no partition contains now"),
        ),
        Coverage::Until { .. } if coverage.covered_secs() < Some(settings.ahead_secs) => {
            Verdict::degraded(
                Reason::PartitionEnding,
                format!(
                    "{table}: partitions end in {} s (at least {} s wanted)",
                    coverage.covered_secs().unwrap_or(0),
                    settings.ahead_secs
                ),
            )
        }
        Coverage::Unbounded | Coverage::Until { .. } => Verdict::healthy(),
    }
}

impl Coverage {
    /// Seconds from now that the partitions cover: `None` when unbounded
    /// or not measurable (the table is unsuitable).
    fn covered_secs(self) -> Option<u64> {
        match self {
            Self::Unsuitable | Self::Unbounded => None,
            Self::None => Some(0),
            Self::Until { until, now } => Some((until - now).max(0.0) as u64),
        }
    }

    /// The table's verbose entry; none for an unsuitable table.
    fn entry(self) -> Option<Value> {
        let until = match self {
            Self::Unsuitable => return None,
            Self::Until { until, .. } => {
                let at = UNIX_EPOCH + Duration::from_secs(until.max(0.0) as u64);
                json!(humantime::format_rfc3339_seconds(at).to_string())
            }
            Self::Unbounded | Self::None => Value::Null,
        };
        Some(json!({"covered_until": until, "covered_secs": self.covered_secs()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn the_migrated_function_runs_the_checks_own_statement() {
        crate::db::planned::assert_migrated(
            include_str!("../../migrations/0006_partitions_readings.sql"),
            STATEMENT,
            FUNCTION,
        );
    }

    fn settings_of(pairs: &[(&str, &str)]) -> Result<PartitionsSettings, ConfigError> {
        PartitionsSettings::from_source(&crate::env::pairs(pairs))
    }

    #[test]
    fn defaults_and_refused_values_name_their_variable() {
        let s = settings_of(&[]).unwrap();
        assert_eq!((s.tables, s.ahead_secs), (vec!["workflow_events".to_owned()], 604_800));
        for (key, value) in [
            ("PARTITIONS_TABLES", "Workflow_Events"),
            ("PARTITIONS_TABLES", "events; drop table x"),
            ("PARTITIONS_TABLES", "a.b.c"),
            ("PARTITIONS_TABLES", "9events"),
            ("PARTITIONS_TABLES", " , "),
            ("PARTITIONS_AHEAD_SECS", "0"),
            ("PARTITIONS_AHEAD_SECS", "a week"),
        ] {
            assert_eq!(settings_of(&[(key, value)]).unwrap_err().variable, key, "{value}");
        }
    }

    #[test]
    fn the_chain_from_now_ends_at_the_first_gap() {
        let day = 86_400.0;
        let ranges = vec![
            (30.0 * day, 60.0 * day),
            (-30.0 * day, 0.0),
            (0.0, 30.0 * day),
            (70.0 * day, 90.0 * day),
        ];
        assert_eq!(
            coverage(ranges.clone(), day),
            Coverage::Until {
                until: 60.0 * day,
                now: day
            }
        );
        assert_eq!(coverage(ranges, 65.0 * day), Coverage::None);
        assert_eq!(
            coverage(vec![(f64::NEG_INFINITY, f64::INFINITY)], 5.0),
            Coverage::Unbounded
        );
        assert_eq!(coverage(Vec::new(), 5.0), Coverage::None);
    }

    #[test]
    fn the_worst_table_decides() {
        let s = settings_of(&[]).unwrap();
        let until = |days: f64| Coverage::Until {
            until: 1_000_000.0 + days * 86_400.0,
            now: 1_000_000.0,
        };
        let one = |c: Coverage| judge_coverage(&[("t".to_owned(), c)], &s);
        assert_eq!(one(until(30.0)).status(), Status::Healthy);
        assert_eq!(one(Coverage::Unbounded).status(), Status::Healthy);
        let ending = one(until(3.0));
        assert_eq!((ending.verdict.status, ending.verdict.reason), (Status::Degraded, Some(Reason::PartitionEnding)));
        assert_eq!(ending.facts[0].1["t"]["covered_secs"], 259_200);
        let none = one(Coverage::None);
        assert_eq!((none.verdict.status, none.verdict.reason), (Status::Unhealthy, Some(Reason::PartitionMissing)));
        let missing = one(Coverage::Unsuitable);
        assert_eq!(missing.verdict.reason, Some(Reason::SchemaMissing));
        let mixed = judge_coverage(
            &[("a".to_owned(), until(3.0)), ("b".to_owned(), Coverage::None)],
            &s,
        );
        assert_eq!(mixed.verdict.reason, Some(Reason::PartitionMissing));
        assert_eq!(mixed.metrics.len(), 2);
        assert!(one(Coverage::Unbounded).metrics.is_empty(), "no metric with a default partition");
    }
}
