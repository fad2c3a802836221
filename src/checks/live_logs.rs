//! The `live_logs` component (opt-in, non-critical by default): whether
//! MeshHook's run console can stream a run's log lines.
//!
//! The console subscribes through Supabase Realtime to inserts on
//! `public.logs`. Realtime delivers a table's changes only when the table is
//! in its publication (`supabase_realtime`), and with row-level security on,
//! only the rows the subscriber may `SELECT`. A table that is missing, not
//! published, or that no policy lets anyone read leaves the console empty
//! and nothing else says so. That Realtime itself answers is the `supabase`
//! component's `realtime` service.
//!
//! Per table, from the catalog alone (readable by any role), in the
//! evaluation's pipelined round trip: it exists, it is in the publication
//! (for all tables, by name, or through its schema), and row-level
//! security is off or some permissive `SELECT` (or `ALL`) policy exists.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_postgres::types::Type;

use crate::component::{
    read, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::names::{check_identifier, check_qualified_table_name};
use crate::db::{Planned, Statement};
use crate::env::{list, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, Reason, Verdict};

pub const COMPONENT: Component = Component {
    name: "live_logs",
    enabled_by_default: false,
    // The console is a convenience: runs go on without it.
    critical_by_default: false,
    private: false,
    uses_postgres: true,
    read_settings: read::<LiveLogsSettings>,
    figures: &[],
};

/// `LIVE_LOGS_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLogsSettings {
    /// Schema-qualified table names.
    pub tables: Vec<String>,
    pub publication: String,
}

impl Settings for LiveLogsSettings {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let tables = list(env.get("LIVE_LOGS_TABLES").as_deref().unwrap_or("public.logs"));
        if tables.is_empty() {
            return Err(ConfigError::new("LIVE_LOGS_TABLES", "names no table"));
        }
        for table in &tables {
            check_qualified_table_name("LIVE_LOGS_TABLES", table, "public.logs")?;
        }
        let publication = env
            .get("LIVE_LOGS_PUBLICATION")
            .map_or_else(|| "supabase_realtime".to_owned(), |p| p.trim().to_owned());
        check_identifier("LIVE_LOGS_PUBLICATION", &publication, "publication")?;
        Ok(Self { tables, publication })
    }

    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        // The same parameters for the statement and its function.
        let bound = |sql: &'static str| {
            Statement::new(sql)
                .bind(self.tables.clone(), Type::TEXT_ARRAY)
                .bind(self.publication.clone(), Type::TEXT)
        };
        Ok(Box::new(LiveLogsCheck {
            inline: bound(STATEMENT),
            statement: Planned::new(
                FUNCTION,
                bound("SELECT * FROM monitoring.live_logs_readings_v1($1, $2)"),
            ),
            settings: self,
        }))
    }
}

/// The function `migrate` creates (migrations/0004) to run [`STATEMENT`]
/// with a plan the server keeps ([`Planned`]).
pub const FUNCTION: &str = "monitoring.live_logs_readings_v1(text[], text)";

/// A row per table of `$1`, in order: its name, whether it exists, whether
/// publication `$2` carries it, whether row-level security filters it, and
/// whether a permissive policy lets some role `SELECT` its rows. Names are
/// looked up in the catalog, not with `to_regclass`, which fails for a
/// schema the health role has no `USAGE` of.
const STATEMENT: &str = "SELECT t.name, c.oid IS NOT NULL, \
       EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = $2 AND (p.puballtables \
           OR EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = c.oid) \
           OR EXISTS (SELECT 1 FROM pg_publication_namespace n \
                      WHERE n.pnpubid = p.oid AND n.pnnspid = c.relnamespace))), \
       coalesce(c.relrowsecurity, false), \
       EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid = c.oid \
                  AND pol.polcmd IN ('r', '*') AND pol.polpermissive) \
     FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
     LEFT JOIN pg_namespace s ON s.nspname = split_part(t.name, '.', 1) \
     LEFT JOIN pg_class c ON c.relnamespace = s.oid AND c.relname = split_part(t.name, '.', 2) \
       AND c.relkind IN ('r', 'p') \
     ORDER BY t.n";

/// What the catalog says of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stream {
    pub exists: bool,
    pub published: bool,
    pub row_security: bool,
    pub readable_policy: bool,
}

impl Stream {
    fn from_row(row: &tokio_postgres::Row) -> Result<(String, Self), tokio_postgres::Error> {
        let stream = Self {
            exists: row.try_get(1)?,
            published: row.try_get(2)?,
            row_security: row.try_get(3)?,
            readable_policy: row.try_get(4)?,
        };
        Ok((row.try_get(0)?, stream))
    }

    /// Missing → `schema_missing`; not published → `not_published`; rows
    /// no policy lets anyone read → `rows_hidden`; else healthy.
    fn verdict(self, table: &str) -> Verdict {
        if !self.exists {
            Verdict::unhealthy(Reason::SchemaMissing, format!("{table} does not exist"))
        } else if !self.published {
            Verdict::unhealthy(
                Reason::NotPublished,
                format!("{table} is not in the publication Realtime reads"),
            )
        } else if self.row_security && !self.readable_policy {
            Verdict::unhealthy(
                Reason::RowsHidden,
                format!("{table} has row-level security on and no policy that lets anyone SELECT"),
            )
        } else {
            Verdict::healthy()
        }
    }
}

struct LiveLogsCheck {
    /// [`STATEMENT`], sent inline on the first evaluation.
    inline: Statement,
    /// Through [`FUNCTION`] when it can be called.
    statement: Planned,
    settings: Arc<LiveLogsSettings>,
}

impl Check for LiveLogsCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let rows = self.statement.query(context.postgres()?, &self.inline).await?;
        let streams = rows
            .iter()
            .map(Stream::from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Failure::new(Reason::BadResponse, "unexpected live_logs row"))?;
        if streams.len() != self.settings.tables.len() {
            return Err(Failure::new(Reason::BadResponse, "a live_logs row per table expected"));
        }
        Ok(judge_streams(&streams))
    }
}

/// Every table's verdict; the worst decides. The verbose entry names each
/// table's reason (`healthy` when it has none).
pub(crate) fn judge_streams(streams: &[(String, Stream)]) -> CheckOutcome {
    let mut all = Aggregate::default();
    let mut tables = Map::new();
    for (table, stream) in streams {
        let verdict = stream.verdict(table);
        let shown = verdict.reason.map_or("healthy", |r| r.as_str());
        tables.insert(table.clone(), Value::from(shown));
        all.add(verdict);
    }
    CheckOutcome::from(all.verdict()).with_facts(vec![("tables", Value::Object(tables))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn the_migrated_function_runs_the_checks_own_statement() {
        crate::db::planned::assert_migrated(
            include_str!("../../migrations/0004_live_logs_readings.sql"),
            STATEMENT,
            FUNCTION,
        );
    }

    fn settings_of(pairs: &[(&str, &str)]) -> Result<LiveLogsSettings, ConfigError> {
        LiveLogsSettings::from_source(&crate::env::pairs(pairs))
    }

    #[test]
    fn defaults_and_refused_values_name_their_variable() {
        let s = settings_of(&[]).unwrap();
        assert_eq!((s.tables, s.publication), (vec!["public.logs".to_owned()], "supabase_realtime".to_owned()));
        for (key, value) in [
            ("LIVE_LOGS_TABLES", "logs"),
            ("LIVE_LOGS_TABLES", "public.Logs"),
            ("LIVE_LOGS_TABLES", "public.logs; drop table x"),
            ("LIVE_LOGS_TABLES", " , "),
            ("LIVE_LOGS_PUBLICATION", "Realtime"),
            ("LIVE_LOGS_PUBLICATION", "a.b"),
        ] {
            assert_eq!(settings_of(&[(key, value)]).unwrap_err().variable, key, "{value}");
        }
    }

    #[test]
    fn each_rule_in_order_and_the_worst_table_decides() {
        let ok = Stream {
            exists: true,
            published: true,
            row_security: true,
            readable_policy: true,
        };
        let of = |stream: Stream| {
            let verdict = stream.verdict("public.logs");
            (verdict.status, verdict.reason)
        };
        assert_eq!(of(ok), (Status::Healthy, None));
        assert_eq!(of(Stream { readable_policy: false, row_security: false, ..ok }), (Status::Healthy, None));
        assert_eq!(of(Stream { readable_policy: false, ..ok }), (Status::Unhealthy, Some(Reason::RowsHidden)));
        assert_eq!(of(Stream { published: false, ..ok }), (Status::Unhealthy, Some(Reason::NotPublished)));
        assert_eq!(of(Stream::default()), (Status::Unhealthy, Some(Reason::SchemaMissing)));
        let outcome = judge_streams(&[("public.logs".into(), Stream::default()), ("public.run_logs".into(), ok)]);
        assert_eq!(outcome.verdict.reason, Some(Reason::SchemaMissing));
        assert_eq!(
            outcome.facts[0].1,
            serde_json::json!({"public.logs": "schema_missing", "public.run_logs": "healthy"})
        );
    }
}
