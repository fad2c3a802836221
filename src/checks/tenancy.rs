//! The `tenancy` component (opt-in, **private**): whether one tenant can
//! read another's rows through the Data API.
//!
//! MeshHook isolates tenants with row-level security, and every browser
//! holds the publishable key: what the `anon` or `authenticated` role may
//! read without row-level security, anyone may read. From the catalog, over
//! the exposed schemas (`TENANCY_EXPOSED_SCHEMAS`), in one statement:
//!
//! - each tenant table (`TENANCY_TABLES`) exists, has row-level security
//!   on, at least one policy, and `authenticated` may read it;
//! - `rls_disabled_in_public` (Supabase's linter's name): a table,
//!   partitions included, that `anon` or `authenticated` may read with
//!   row-level security off;
//! - `security_definer_view`: a view those roles may read that runs with
//!   its owner's rights (no `security_invoker`) and reads, directly or
//!   through other views, a table with row-level security on whose policies
//!   do not hold that owner (it owns the table without `FORCE ROW LEVEL
//!   SECURITY`, is a superuser or has `BYPASSRLS`).
//!
//! Objects an extension owns are not the app's and are not judged. A role
//! "may read" when it has `USAGE` on the schema and `SELECT` on the table or
//! any of its columns, through `PUBLIC` or a role it belongs to. Every
//! catalog and function read here is open to any role: the health role needs
//! no grant.
//!
//! The catalog is read on the first evaluation and then at most every
//! `TENANCY_EVERY_SECS` (on 20,000 relations a reading costs milliseconds,
//! BENCHMARKS.md); in between, the last reading stands, with its age. The
//! component is private (see [`Component::private`]): the public body never
//! names it, and its status never becomes the public one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_postgres::types::Type;

use crate::component::{
    read, Asked, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::names::{check_identifier, check_qualified_table_name};
use crate::db::Statement;
use crate::env::{list, number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, Reason, Status, Verdict};

pub const COMPONENT: Component = Component {
    name: "tenancy",
    enabled_by_default: false,
    critical_by_default: true,
    // Announcing "tenant isolation broken" to the world invites the attack.
    private: true,
    uses_postgres: true,
    read_settings: read::<TenancySettings>,
    figures: &[],
};

/// MeshHook's tenant tables: those its row-level security migration
/// (`20250110000002_enable_rls_policies.sql`) protects.
const DEFAULT_TABLES: &str = "public.projects,public.secrets,public.workflow_definitions,\
                              public.workflow_runs,public.workflow_events,public.audit_log";

/// Findings listed in the verbose body and the log; the count is always whole.
pub const LISTED: i32 = 100;

/// `TENANCY_*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenancySettings {
    /// Schema-qualified tenant tables.
    pub tables: Vec<String>,
    /// The schemas the Data API exposes.
    pub exposed_schemas: Vec<String>,
    /// Least time between two catalog readings.
    pub every: Duration,
}

impl Settings for TenancySettings {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let tables = list(env.get("TENANCY_TABLES").as_deref().unwrap_or(DEFAULT_TABLES));
        for table in &tables {
            check_qualified_table_name("TENANCY_TABLES", table, "public.projects")?;
        }
        let exposed_schemas = list(env.get("TENANCY_EXPOSED_SCHEMAS").as_deref().unwrap_or("public"));
        if exposed_schemas.is_empty() {
            return Err(ConfigError::new("TENANCY_EXPOSED_SCHEMAS", "names no schema"));
        }
        for schema in &exposed_schemas {
            check_identifier("TENANCY_EXPOSED_SCHEMAS", schema, "schema")?;
        }
        let every = Duration::from_secs(number(env, "TENANCY_EVERY_SECS", 60, 0, 86_400)?);
        Ok(Self {
            tables,
            exposed_schemas,
            every,
        })
    }

    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        Ok(Box::new(TenancyCheck {
            statement: Statement::new(STATEMENT)
                .bind(self.tables.clone(), Type::TEXT_ARRAY)
                .bind(self.exposed_schemas.clone(), Type::TEXT_ARRAY)
                .bind(LISTED, Type::INT4),
            settings: self,
            sample: Mutex::default(),
        }))
    }
}

/// SQL: relation `$rel` is a view that runs with its owner's rights (no
/// `security_invoker`: Postgres keeps the option as written, `true`, `on`,
/// `1`…, so it is read as a boolean).
macro_rules! definer_view {
    ($rel:literal) => {
        concat!(
            $rel, ".relkind = 'v' AND NOT coalesce((SELECT split_part(o, '=', 2)::boolean FROM unnest(",
            $rel, ".reloptions) o WHERE split_part(o, '=', 1) = 'security_invoker'), false)"
        )
    };
}

/// Every finding as `(lint, object, total)`, most severe rule first, at
/// most `$3` rows; `total` counts them all. `$1`: the tenant tables, `$2`:
/// the exposed schemas.
///
/// Its cost is the scan of `pg_class` and, per *candidate* only — a table
/// with row-level security off or a view without `security_invoker`, in an
/// exposed schema — the privilege checks; the browser's role ids, their
/// `USAGE` of each schema and the extensions' members are looked up once
/// (BENCHMARKS.md: 20,000 relations).
pub const STATEMENT: &str = concat!("\
WITH RECURSIVE browser AS ( \
  SELECT (SELECT oid FROM pg_roles WHERE rolname = 'anon') AS anon, \
         (SELECT oid FROM pg_roles WHERE rolname = 'authenticated') AS authenticated), \
exposed AS ( \
  SELECT n.oid, n.nspname, \
    coalesce(has_schema_privilege(b.anon, n.oid, 'USAGE'), false) AS anon_usage, \
    coalesce(has_schema_privilege(b.authenticated, n.oid, 'USAGE'), false) AS authenticated_usage \
  FROM pg_namespace n, browser b WHERE n.nspname = ANY ($2::text[])), \
extension_member AS ( \
  SELECT d.objid FROM pg_extension x JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass \
    AND d.refobjid = x.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'), \
candidate AS MATERIALIZED ( \
  SELECT c.oid, c.relkind, c.relowner, e.nspname || '.' || c.relname AS name \
  FROM pg_class c JOIN exposed e ON e.oid = c.relnamespace, browser b \
  WHERE ((c.relkind IN ('r', 'p') AND NOT c.relrowsecurity) \
         OR (", definer_view!("c"), ")) \
    AND ((e.anon_usage AND coalesce(has_any_column_privilege(b.anon, c.oid, 'SELECT'), false)) \
      OR (e.authenticated_usage AND coalesce(has_any_column_privilege(b.authenticated, c.oid, 'SELECT'), false))) \
    AND c.oid NOT IN (SELECT objid FROM extension_member)), \
exposed_table AS (SELECT oid, name FROM candidate WHERE relkind IN ('r', 'p')), \
walk (view, rel, runner, depth) AS ( \
  SELECT oid, oid, relowner, 0 FROM candidate WHERE relkind = 'v' \
  UNION \
  SELECT w.view, c.oid, \
    CASE WHEN ", definer_view!("c"), " THEN c.relowner ELSE w.runner END, \
    w.depth + 1 \
  FROM walk w \
  JOIN pg_rewrite r ON r.ev_class = w.rel AND r.rulename = '_RETURN' \
  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> w.rel \
  JOIN pg_class c ON c.oid = d.refobjid \
  WHERE w.depth < 16), \
bypassing_view AS ( \
  SELECT DISTINCT w.view FROM walk w \
  JOIN pg_class t ON t.oid = w.rel JOIN pg_roles o ON o.oid = w.runner \
  WHERE t.relkind IN ('r', 'p') AND t.relrowsecurity \
    AND (o.rolsuper OR o.rolbypassrls \
         OR (NOT t.relforcerowsecurity AND pg_has_role(w.runner, t.relowner, 'USAGE')))), \
tenant AS ( \
  SELECT t.name, c.oid, c.relrowsecurity, c.relnamespace \
  FROM unnest($1::text[]) AS t(name) \
  LEFT JOIN pg_namespace n ON n.nspname = split_part(t.name, '.', 1) \
  LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = split_part(t.name, '.', 2) \
    AND c.relkind IN ('r', 'p')), \
finding (rank, lint, object) AS ( \
  SELECT 1, 'tenant_table_missing', name FROM tenant WHERE oid IS NULL \
  UNION ALL SELECT 2, 'rls_disabled_in_public', name FROM exposed_table \
  UNION ALL SELECT 3, 'tenant_table_rls_disabled', name FROM tenant \
    WHERE NOT relrowsecurity AND oid NOT IN (SELECT oid FROM exposed_table) \
  UNION ALL SELECT 4, 'security_definer_view', name FROM candidate \
    WHERE oid IN (SELECT view FROM bypassing_view) \
  UNION ALL SELECT 5, 'rls_enabled_no_policy', name FROM tenant t \
    WHERE relrowsecurity AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.oid) \
  UNION ALL SELECT 6, 'tenant_table_not_granted', name FROM tenant t, browser b \
    WHERE oid IS NOT NULL AND NOT coalesce(has_schema_privilege(b.authenticated, t.relnamespace, 'USAGE') \
      AND has_any_column_privilege(b.authenticated, t.oid, 'SELECT'), false)) \
SELECT lint, object, count(*) OVER () FROM finding ORDER BY rank, object COLLATE \"C\" LIMIT $3");

/// What a lint means for the component, and what the log says of it.
fn judge(lint: &str) -> (Status, Reason, &'static str) {
    match lint {
        "tenant_table_missing" => (Status::Unhealthy, Reason::SchemaMissing, "tenant table missing"),
        "rls_disabled_in_public" => (
            Status::Unhealthy,
            Reason::RlsDisabled,
            "readable by anon or authenticated with row-level security off",
        ),
        "tenant_table_rls_disabled" => (
            Status::Unhealthy,
            Reason::RlsDisabled,
            "tenant table with row-level security off",
        ),
        "security_definer_view" => (
            Status::Unhealthy,
            Reason::RlsBypassed,
            "view readable by anon or authenticated that reads a table with row-level security as its owner",
        ),
        "rls_enabled_no_policy" => (
            Status::Degraded,
            Reason::NoPolicy,
            "tenant table with row-level security on and no policy",
        ),
        // `tenant_table_not_granted`, the statement's last rule.
        _ => (
            Status::Degraded,
            Reason::NotGranted,
            "tenant table authenticated may not SELECT",
        ),
    }
}

/// One catalog reading: the listed findings and how many there are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// `(lint, object)`, most severe rule first.
    pub findings: Vec<(String, String)>,
    pub total: u64,
}

impl Reading {
    fn from_rows(rows: &[tokio_postgres::Row]) -> Result<Self, tokio_postgres::Error> {
        let mut reading = Self::default();
        for row in rows {
            reading.findings.push((row.try_get(0)?, row.try_get(1)?));
            reading.total = u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0);
        }
        Ok(reading)
    }

    /// The worst finding decides; the log names every listed object, by
    /// rule. The verbose entry lists them, with the reading's age.
    pub fn outcome(&self, age: Duration) -> CheckOutcome {
        let mut all = Aggregate::default();
        let mut by_lint: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (lint, object) in &self.findings {
            let (status, reason, _) = judge(lint);
            all.add(Verdict::of(status, reason, ""));
            by_lint.entry(lint).or_default().push(object);
        }
        let cut = self.total > self.findings.len() as u64;
        let mut verdict = all.verdict();
        verdict.text = (!self.findings.is_empty()).then(|| {
            let mut text: Vec<String> = by_lint
                .iter()
                .map(|(lint, objects)| format!("{lint} ({}): {}", judge(lint).2, objects.join(", ")))
                .collect();
            if cut {
                text.push(format!("{} findings, the first {} listed", self.total, self.findings.len()));
            }
            text.join("; ")
        });
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|(lint, object)| json!({"lint": lint, "object": object}))
            .collect();
        let mut facts = vec![("findings", Value::from(findings))];
        if cut {
            facts.push(("findings_total", Value::from(self.total)));
        }
        facts.push(("read_age_s", Value::from(age.as_secs())));
        CheckOutcome::from(verdict).with_facts(facts)
    }
}

/// The latest reading and when one was last asked for.
#[derive(Default)]
struct Sample {
    asked: Asked,
    last: Option<(Instant, Result<Reading, Failure>)>,
}

impl Sample {
    /// Whether this evaluation reads the catalog (see [`Asked`]): a reading
    /// that did not finish within the deadline waits for `every` (a catalog
    /// that slow would otherwise slow every answer); one that failed
    /// otherwise (the database down) is asked for again at once.
    fn due(&mut self, every: Duration) -> bool {
        let failed = matches!(&self.last, Some((_, Err(f))) if f.reason != Reason::Timeout);
        self.asked.due(every, failed)
    }
}

struct TenancyCheck {
    statement: Statement,
    settings: Arc<TenancySettings>,
    sample: Mutex<Sample>,
}

impl TenancyCheck {
    async fn read_catalog(&self, context: &CheckContext<'_>) -> Result<Reading, Failure> {
        let rows = context.postgres()?.query(&self.statement).await?;
        Reading::from_rows(&rows).map_err(|_| Failure::new(Reason::BadResponse, "unexpected tenancy row"))
    }
}

impl Check for TenancyCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let due = self.sample.lock().due(self.settings.every);
        if due {
            let result = self.read_catalog(context).await;
            let outcome = result.as_ref().map(|r| r.outcome(Duration::ZERO));
            self.sample.lock().last = Some((Instant::now(), result.clone()));
            return outcome.map_err(Clone::clone);
        }
        let sample = self.sample.lock();
        match &sample.last {
            Some((at, Ok(reading))) => Ok(reading.outcome(at.elapsed())),
            Some((_, Err(failure))) => Err(failure.clone()),
            None => Err(Failure::new(
                Reason::Timeout,
                "the catalog reading did not finish within the deadline; it is asked for again after TENANCY_EVERY_SECS",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_of(pairs: &[(&str, &str)]) -> Result<TenancySettings, ConfigError> {
        TenancySettings::from_source(&crate::env::pairs(pairs))
    }

    #[test]
    fn defaults_and_refused_values_name_their_variable() {
        let s = settings_of(&[]).unwrap();
        assert_eq!(s.tables.len(), 6);
        assert_eq!(s.tables[4], "public.workflow_events");
        assert_eq!((s.exposed_schemas, s.every), (vec!["public".to_owned()], Duration::from_secs(60)));
        for (key, value) in [
            ("TENANCY_TABLES", "projects"),
            ("TENANCY_TABLES", "public.Projects"),
            ("TENANCY_EXPOSED_SCHEMAS", " , "),
            ("TENANCY_EXPOSED_SCHEMAS", "public,Api"),
            ("TENANCY_EVERY_SECS", "-1"),
            ("TENANCY_EVERY_SECS", "a minute"),
        ] {
            assert_eq!(settings_of(&[(key, value)]).unwrap_err().variable, key, "{value}");
        }
        // Empty is unset, as for every variable: MeshHook's tables.
        assert_eq!(settings_of(&[("TENANCY_TABLES", "")]).unwrap().tables.len(), 6);
    }

    fn reading(findings: &[(&str, &str)], total: u64) -> Reading {
        Reading {
            findings: findings.iter().map(|(l, o)| ((*l).to_owned(), (*o).to_owned())).collect(),
            total,
        }
    }

    #[test]
    fn the_worst_rule_decides_and_every_object_is_named() {
        let none = reading(&[], 0).outcome(Duration::from_secs(3));
        assert_eq!((none.status(), none.verdict.reason), (Status::Healthy, None));
        assert_eq!(none.facts, vec![("findings", json!([])), ("read_age_s", json!(3))]);

        let found = reading(
            &[
                ("rls_disabled_in_public", "public.job_tracking"),
                ("rls_disabled_in_public", "public.workflow_events"),
                ("security_definer_view", "public.workflows"),
                ("tenant_table_not_granted", "public.secrets"),
            ],
            4,
        )
        .outcome(Duration::ZERO);
        assert_eq!((found.status(), found.verdict.reason), (Status::Unhealthy, Some(Reason::RlsDisabled)));
        assert_eq!(
            found.facts[0].1[2],
            json!({"lint": "security_definer_view", "object": "public.workflows"})
        );
        let text = found.verdict.text.unwrap();
        assert!(text.contains("public.job_tracking, public.workflow_events"), "{text}");
        assert!(text.contains("public.workflows") && text.contains("public.secrets"), "{text}");

        for (lint, status, reason) in [
            ("tenant_table_missing", Status::Unhealthy, Reason::SchemaMissing),
            ("tenant_table_rls_disabled", Status::Unhealthy, Reason::RlsDisabled),
            ("security_definer_view", Status::Unhealthy, Reason::RlsBypassed),
            ("rls_enabled_no_policy", Status::Degraded, Reason::NoPolicy),
            ("tenant_table_not_granted", Status::Degraded, Reason::NotGranted),
        ] {
            let outcome = reading(&[(lint, "public.x")], 1).outcome(Duration::ZERO);
            assert_eq!((outcome.status(), outcome.verdict.reason), (status, Some(reason)), "{lint}");
        }
    }

    #[test]
    fn a_long_list_is_cut_and_its_count_kept() {
        let outcome = reading(&[("rls_disabled_in_public", "public.t1")], 250).outcome(Duration::ZERO);
        assert_eq!(outcome.facts[1], ("findings_total", json!(250)));
        assert!(outcome.verdict.text.unwrap().contains("250 findings, the first 1 listed"));
    }

    #[test]
    fn a_reading_is_asked_for_again_only_when_due() {
        let every = Duration::from_secs(60);
        let mut sample = Sample::default();
        assert!(sample.due(every), "the first evaluation reads");
        sample.last = Some((Instant::now(), Ok(Reading::default())));
        assert!(!sample.due(every));
        sample.last = Some((Instant::now(), Err(Failure::new(Reason::Timeout, "slow"))));
        assert!(!sample.due(every), "a reading too slow for the deadline waits");
        sample.last = Some((Instant::now(), Err(Failure::new(Reason::Unreachable, "down"))));
        assert!(sample.due(every), "a failed reading is asked for again");
        assert!(Sample::default().due(Duration::ZERO));
        let mut always = Sample::default();
        always.due(Duration::ZERO);
        assert!(always.due(Duration::ZERO), "TENANCY_EVERY_SECS=0 reads at every evaluation");
    }
}
