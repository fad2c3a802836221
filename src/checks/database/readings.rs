//! The `database` component's readings, its function's statement, the
//! thresholds it is judged by, the judgement and its figures.

use serde_json::{json, Value};

use std::time::Duration;

use crate::db::count;
use crate::outcome::{Aggregate, CheckOutcome, Facts, Reason, Verdict};
use crate::figures::{Figure, MetricSet, Unit};

/// The database's figures, in the order [`metrics`] gives them.
pub(super) const FIGURES: &[Figure] = &[USED_PERCENT, USED, LIMIT, USED_RATIO, XID_AGE, SIZE];

const USED_PERCENT: Figure = Figure {
    emf: Some("DatabaseConnectionsUsedPercent"),
    prometheus: None,
    label: None,
    help: "",
    unit: Unit::Percent,
};
const USED: Figure = Figure {
    emf: None,
    prometheus: Some("database_connections_used"),
    label: None,
    help: "Client connections open to the server, of every role",
    unit: Unit::Count,
};
const LIMIT: Figure = Figure {
    emf: None,
    prometheus: Some("database_connections_limit"),
    label: None,
    help: "Client connection slots a role without superuser may take",
    unit: Unit::Count,
};
const USED_RATIO: Figure = Figure {
    emf: None,
    prometheus: Some("database_connections_used_ratio"),
    label: None,
    help: "Client connections open as a fraction of the slots a role without superuser may take",
    unit: Unit::Ratio,
};
const XID_AGE: Figure = Figure {
    emf: Some("DatabaseXidAge"),
    prometheus: Some("database_xid_age"),
    label: None,
    help: "Age in transactions of the oldest unfrozen transaction ID of any database (wraparound at 2^31)",
    unit: Unit::Count,
};
const SIZE: Figure = Figure {
    emf: Some("DatabaseSizeBytes"),
    prometheus: Some("database_size_bytes"),
    label: None,
    help: "Size of the database on disk, when DATABASE_SIZE_LIMIT_BYTES is set",
    unit: Unit::Bytes,
};

/// `age(datfrozenxid)` at which Postgres starts warning, 40 million
/// transactions before it refuses writes: unhealthy from here.
pub const XID_AGE_UNHEALTHY: u64 = 2_107_483_648;

/// The `database` component's thresholds (`DATABASE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub connections_degraded_pct: u64,
    pub xid_age_degraded: u64,
    /// Measured only when a limit is set.
    pub size: Option<SizeLimit>,
}

/// `DATABASE_SIZE_*`: a plan's database size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeLimit {
    pub limit_bytes: u64,
    pub degraded_pct: u64,
    /// The size is read at most this often (zero: every evaluation).
    pub every: Duration,
}


/// The function's statement ([`FUNCTION`]), with the size reading or a
/// NULL in its place, as a statement of its own: what the tests compare
/// with the inline readings (`inline.rs`), and what `make bench` and
/// `examples/first_statement.rs` time.
///
/// Its shape is kept cheap to plan: `current_setting()` rather than the
/// `pg_settings` view (which builds every setting), `pg_stat_get_activity()`
/// rather than the `pg_stat_activity` view (which joins two catalogs), one
/// pass over `pg_database` for the transaction-ID age and this database's
/// oid, one over `pg_db_role_setting` for the two settings Postgres keeps
/// there (its `name=value` array read as text: a boolean's value never
/// needs the quoting that would change that text).
#[cfg(any(test, feature = "test-seams"))]
pub fn statement(with_size: bool) -> String {
    let size = if with_size {
        // The privilege test keeps a role that may not read the size from
        // failing the whole statement: its reading is NULL instead.
        "CASE WHEN has_database_privilege(current_database(), 'CONNECT') \
              THEN pg_database_size(current_database()) END"
    } else {
        "NULL::bigint"
    };
    statement_with(size)
}

/// The function `migrate` creates ([`FUNCTION`]): the same statement, its
/// size read when its argument `with_size` says so. Postgres plans a
/// PL/pgSQL function's statement once per session and keeps the plan, where
/// an unnamed statement (all a transaction-mode pooler allows) is planned at
/// every evaluation; the readings are made afresh at every call.
#[cfg(test)]
pub fn function_statement() -> String {
    statement_with(
        "CASE WHEN with_size AND has_database_privilege(current_database(), 'CONNECT') \
              THEN pg_database_size(current_database()) END",
    )
}

/// The function the check calls when `migrate` has created it (the
/// inline readings otherwise); its version changes with its columns.
pub const FUNCTION: &str = "monitoring.database_readings_v1(boolean)";

#[cfg(any(test, feature = "test-seams"))]
fn statement_with(size: &str) -> String {
    format!(
        "SELECT pg_is_in_recovery(), \
           current_setting('default_transaction_read_only')::bool, \
           rs.database_read_only, rs.role_sets_it, act.used, \
           current_setting('max_connections')::int \
             - current_setting('superuser_reserved_connections')::int \
             - coalesce(current_setting('reserved_connections', true)::int, 0), \
           d.xid_age, {size} \
         FROM (SELECT max(age(datfrozenxid)) FILTER (WHERE datallowconn) AS xid_age, \
                      max(oid) FILTER (WHERE datname = current_database()) AS oid \
                 FROM pg_database) d, \
         LATERAL (SELECT bool_or(rtrim(split_part(split_part(s.setconfig::text, \
                                   'default_transaction_read_only=', 2), ',', 1), '}}')::bool) \
                           FILTER (WHERE s.setrole = 0 AND s.setdatabase = d.oid) AS database_read_only, \
                         count(*) FILTER (WHERE s.setrole = to_regrole(quote_ident(session_user)) \
                                            AND s.setdatabase IN (0, d.oid)) > 0 AS role_sets_it \
                    FROM pg_db_role_setting s \
                   WHERE position('default_transaction_read_only=' IN s.setconfig::text) > 0) rs, \
         (SELECT count(*) AS used FROM pg_stat_get_activity(NULL) a \
           WHERE a.backend_type = 'client backend' \
              OR (a.backend_type IS NULL AND a.datid IS NOT NULL AND a.usesysid IS NOT NULL \
                  AND a.pid NOT IN (SELECT pid FROM pg_stat_get_wal_senders()))) act"
    )
}

/// What one statement read. `None` is a reading that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readings {
    pub in_recovery: bool,
    /// `default_transaction_read_only` as this session has it.
    pub session_read_only: bool,
    /// `ALTER DATABASE … SET default_transaction_read_only`, when set.
    pub database_read_only: Option<bool>,
    /// This role sets `default_transaction_read_only` itself (`ALTER ROLE
    /// … SET`), so the session's value says nothing of the server's.
    pub role_sets_it: bool,
    pub connections_used: u64,
    /// Slots a non-superuser may take; `None` when the settings leave none.
    pub connections_limit: Option<u64>,
    pub xid_age: Option<u64>,
    pub size_bytes: Option<u64>,
}

impl Readings {
    /// Whether a MeshHook session would be read-only: in recovery, else the
    /// database's setting (read from the catalog, so also one made after
    /// this session started), else the session's own value — which is the
    /// server's (configuration file, `ALTER SYSTEM`, `ALTER ROLE ALL`)
    /// unless this role sets it; `None` when nothing tells.
    pub fn read_only(&self) -> Option<bool> {
        if self.in_recovery {
            return Some(true);
        }
        let server = (!self.role_sets_it).then_some(self.session_read_only);
        self.database_read_only.or(server)
    }

    /// The statement's one row, by type: a column of another type (or a
    /// NULL where there can be none) is an error.
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        let limit: i32 = row.try_get(5)?;
        let xid_age: Option<i32> = row.try_get(6)?;
        let size_bytes: Option<i64> = row.try_get(7)?;
        Ok(Self {
            in_recovery: row.try_get(0)?,
            session_read_only: row.try_get(1)?,
            database_read_only: row.try_get(2)?,
            role_sets_it: row.try_get(3)?,
            connections_used: count(row, 4)?,
            connections_limit: u64::try_from(limit).ok().filter(|&l| l > 0),
            xid_age: xid_age.and_then(|a| u64::try_from(a).ok()),
            size_bytes: size_bytes.and_then(|b| u64::try_from(b).ok()),
        })
    }
}

/// Each rule in order, worst first: read-only, no free slot, wraparound
/// near its hard point → unhealthy; slots nearly taken, transaction IDs
/// past the warning age, size near the limit → degraded. A rule's verdict
/// is healthy when it does not hold, and carries a note when the reading
/// it needs could not be made. The first rule that holds gives the reason;
/// the log text names every one that holds, then every missing reading.
pub(crate) fn judge_readings(readings: &Readings, settings: &DatabaseSettings) -> CheckOutcome {
    let rules = [
        read_only(readings),
        connections(readings, settings),
        xid_age(readings, settings),
        size(readings, settings),
    ];
    let (holding, notes): (Vec<Verdict>, Vec<Verdict>) =
        rules.into_iter().partition(|rule| rule.reason.is_some());
    let all: Aggregate = holding.into_iter().chain(notes).collect();
    CheckOutcome::from(all.verdict())
        .with_facts(facts(readings))
        .with_metrics(metrics(readings, settings))
}

fn read_only(r: &Readings) -> Verdict {
    match r.read_only() {
        Some(true) if r.in_recovery => Verdict::unhealthy(
            Reason::ReadOnly,
            "the server is in recovery (a standby): it takes no writes",
        ),
        Some(true) => Verdict::unhealthy(
            Reason::ReadOnly,
            "default_transaction_read_only is on for the server or the database: \
             every new transaction is read-only",
        ),
        Some(false) => Verdict::healthy(),
        None => Verdict::note(
            "read_only unknown: this role sets default_transaction_read_only itself \
             (ALTER ROLE … SET), which hides the server's value",
        ),
    }
}

fn connections(r: &Readings, settings: &DatabaseSettings) -> Verdict {
    let used = r.connections_used;
    let pct = settings.connections_degraded_pct;
    match r.connections_limit {
        Some(limit) if used >= limit => Verdict::unhealthy(
            Reason::ConnectionsExhausted,
            format!("{used} of {limit} client connection slots in use"),
        ),
        Some(limit) if used * 100 >= limit * pct => Verdict::degraded(
            Reason::ConnectionsNearLimit,
            format!("{used} of {limit} client connection slots in use (at least {pct}%)"),
        ),
        Some(_) => Verdict::healthy(),
        None => Verdict::note("connections unknown: the settings leave no slot to a non-superuser"),
    }
}

fn xid_age(r: &Readings, settings: &DatabaseSettings) -> Verdict {
    match r.xid_age {
        Some(age) if age >= XID_AGE_UNHEALTHY => Verdict::unhealthy(
            Reason::WraparoundNear,
            format!("oldest datfrozenxid age {age}: Postgres refuses writes 40 million transactions on"),
        ),
        Some(age) if age >= settings.xid_age_degraded => Verdict::degraded(
            Reason::WraparoundNear,
            format!("oldest datfrozenxid age {age} (at least {})", settings.xid_age_degraded),
        ),
        Some(_) => Verdict::healthy(),
        None => Verdict::note("xid_age unknown: no database allows connections"),
    }
}

fn size(r: &Readings, settings: &DatabaseSettings) -> Verdict {
    let Some(size) = &settings.size else {
        return Verdict::healthy();
    };
    match r.size_bytes {
        Some(bytes)
            if u128::from(bytes) * 100
                >= u128::from(size.limit_bytes) * u128::from(size.degraded_pct) =>
        {
            Verdict::degraded(
                Reason::SizeNearLimit,
                format!(
                    "database size {bytes} bytes of a {} byte limit (at least {}%)",
                    size.limit_bytes, size.degraded_pct
                ),
            )
        }
        Some(_) => Verdict::healthy(),
        None => Verdict::note("size_bytes unknown: this role may not read the database's size"),
    }
}

/// The verbose body's readings; `null` for one that could not be made.
fn facts(r: &Readings) -> Facts {
    vec![
        ("read_only", r.read_only().map_or(Value::Null, Value::Bool)),
        (
            "connections",
            r.connections_limit.map_or(Value::Null, |limit| {
                json!({"used": r.connections_used, "limit": limit})
            }),
        ),
        ("xid_age", r.xid_age.map_or(Value::Null, |a| json!(a))),
        ("size_bytes", r.size_bytes.map_or(Value::Null, |b| json!(b))),
    ]
}

/// The figures of the readings that were made.
fn metrics(r: &Readings, settings: &DatabaseSettings) -> Vec<MetricSet> {
    let mut values = Vec::new();
    if let Some(limit) = r.connections_limit {
        let used = r.connections_used as f64;
        let percent = used * 100.0 / limit as f64;
        values.push((&USED_PERCENT, (percent * 10.0).round() / 10.0));
        values.push((&USED, used));
        values.push((&LIMIT, limit as f64));
        values.push((&USED_RATIO, used / limit as f64));
    }
    if let Some(age) = r.xid_age {
        values.push((&XID_AGE, age as f64));
    }
    if let (Some(_), Some(bytes)) = (&settings.size, r.size_bytes) {
        values.push((&SIZE, bytes as f64));
    }
    if values.is_empty() {
        return Vec::new();
    }
    vec![MetricSet {
        dimension: ("Component", "database".to_owned()),
        values,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;
    use crate::component::Settings;
    use crate::env::ConfigError;

    #[test]
    fn the_migrated_function_runs_the_checks_own_statement() {
        crate::db::planned::assert_migrated(
            include_str!("../../../migrations/0003_database_readings.sql"),
            &function_statement(),
            FUNCTION,
        );
    }

    fn thresholds(pairs: &[(&str, &str)]) -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::from_source(&crate::env::pairs(pairs))
    }

    fn writable() -> Readings {
        Readings {
            connections_used: 5,
            connections_limit: Some(57),
            xid_age: Some(48_211),
            ..Readings::default()
        }
    }

    #[test]
    fn every_rule_in_order_worst_first() {
        let t = thresholds(&[
            ("DATABASE_SIZE_LIMIT_BYTES", "1000"),
            ("DATABASE_XID_AGE_DEGRADED", "1000000"),
        ])
        .unwrap();
        let of = |change: &dyn Fn(&mut Readings)| {
            let mut r = writable();
            r.size_bytes = Some(10);
            change(&mut r);
            let outcome = judge_readings(&r, &t);
            (outcome.verdict.status, outcome.verdict.reason)
        };
        use Status::{Degraded, Healthy, Unhealthy};
        assert_eq!(of(&|_| {}), (Healthy, None));
        assert_eq!(of(&|r| r.in_recovery = true), (Unhealthy, Some(Reason::ReadOnly)));
        assert_eq!(of(&|r| r.session_read_only = true), (Unhealthy, Some(Reason::ReadOnly)));
        assert_eq!(
            of(&|r| {
                r.session_read_only = true;
                r.database_read_only = Some(false);
            }),
            (Healthy, None),
            "the database's setting wins over the server's"
        );
        assert_eq!(
            of(&|r| {
                r.session_read_only = true;
                r.role_sets_it = true;
            }),
            (Healthy, None),
            "the role's own setting is no outage"
        );
        assert_eq!(of(&|r| r.database_read_only = Some(true)), (Unhealthy, Some(Reason::ReadOnly)));
        assert_eq!(of(&|r| r.connections_used = 57), (Unhealthy, Some(Reason::ConnectionsExhausted)));
        assert_eq!(of(&|r| r.connections_used = 52), (Degraded, Some(Reason::ConnectionsNearLimit)));
        assert_eq!(of(&|r| r.connections_used = 51), (Healthy, None), "51 < 57 × 90%");
        assert_eq!(of(&|r| r.xid_age = Some(XID_AGE_UNHEALTHY)), (Unhealthy, Some(Reason::WraparoundNear)));
        assert_eq!(of(&|r| r.xid_age = Some(1_000_000)), (Degraded, Some(Reason::WraparoundNear)));
        assert_eq!(of(&|r| r.size_bytes = Some(800)), (Degraded, Some(Reason::SizeNearLimit)));
        assert_eq!(of(&|r| r.size_bytes = Some(799)), (Healthy, None));
        assert_eq!(
            of(&|r| {
                r.size_bytes = Some(900);
                r.connections_used = 57;
            }),
            (Unhealthy, Some(Reason::ConnectionsExhausted)),
            "worst wins"
        );
    }

    #[test]
    fn a_reading_that_cannot_be_made_is_null_and_decides_nothing() {
        let t = thresholds(&[("DATABASE_SIZE_LIMIT_BYTES", "1000")]).unwrap();
        let r = Readings {
            session_read_only: true,
            role_sets_it: true,
            connections_limit: None,
            xid_age: None,
            size_bytes: None,
            ..writable()
        };
        let outcome = judge_readings(&r, &t);
        assert_eq!((outcome.verdict.status, outcome.verdict.reason), (Status::Healthy, None));
        let facts: serde_json::Map<String, Value> =
            outcome.facts.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        assert_eq!(
            Value::Object(facts),
            json!({"read_only": null, "connections": null, "xid_age": null, "size_bytes": null})
        );
        let log = outcome.verdict.text.unwrap();
        for reading in ["read_only", "connections", "xid_age", "size_bytes"] {
            assert!(log.contains(&format!("{reading} unknown")), "{log}");
        }
        assert!(log.contains("ALTER ROLE"), "{log}");
        assert!(outcome.metrics.is_empty());
    }

    #[test]
    fn facts_and_metrics_of_a_healthy_database() {
        let t = thresholds(&[("DATABASE_SIZE_LIMIT_BYTES", "1000")]).unwrap();
        let outcome = judge_readings(
            &Readings {
                size_bytes: Some(10),
                ..writable()
            },
            &t,
        );
        assert_eq!(outcome.verdict.text, None);
        assert_eq!(outcome.facts[0], ("read_only", json!(false)));
        assert_eq!(outcome.facts[1], ("connections", json!({"used": 5, "limit": 57})));
        let values = &outcome.metrics[0].values;
        let emf: Vec<_> = values.iter().filter_map(|(f, v)| Some((f.emf?, *v))).collect();
        assert_eq!(
            emf,
            [("DatabaseConnectionsUsedPercent", 8.8), ("DatabaseXidAge", 48_211.0), ("DatabaseSizeBytes", 10.0)]
        );
        let prometheus: Vec<_> = values.iter().filter_map(|(f, v)| Some((f.prometheus?, *v))).collect();
        assert_eq!(
            prometheus,
            [
                ("database_connections_used", 5.0),
                ("database_connections_limit", 57.0),
                ("database_connections_used_ratio", 5.0 / 57.0),
                ("database_xid_age", 48_211.0),
                ("database_size_bytes", 10.0),
            ]
        );
    }
}
