//! The `database` component: whether MeshHook can write, now and tomorrow.
//!
//! `SELECT 1` succeeds on a database that MeshHook cannot use: Supabase
//! puts a project whose disk fills into read-only mode (`ALTER SYSTEM SET
//! default_transaction_read_only = on` and a reload), a `DATABASE_URL` may
//! point at a replica, the client connection slots may all be taken (ours is
//! already open; MeshHook's next one is refused), transaction IDs may near
//! wraparound, a Free project may near its size limit. So one statement
//! reads, on the evaluation's shared session (still one round trip):
//!
//! - `read_only`: in recovery, or `default_transaction_read_only` on as the
//!   server or the database sets it. Not as this role or session sets it:
//!   an operator may well make the health role read-only, and that is no
//!   outage. Postgres shows a session only its own effective value, so when
//!   the role sets it (`ALTER ROLE … SET`, kept in `pg_db_role_setting`),
//!   the server's value is hidden; the database's is still read from that
//!   catalog, and the reading is `null` when neither tells. (The checker
//!   never `SET`s it in its session; a transaction pooler that let another
//!   client's `SET` leak into a shared server connection could.)
//! - `connections`: client backends in use against the slots a
//!   non-superuser may take. Postgres hides the `backend_type` of other
//!   roles' sessions from a role without `pg_read_all_stats`, so such a row
//!   counts when it has a user and a database and is not a WAL sender — what
//!   a client backend has, and what autovacuum and the server's own
//!   processes lack.
//! - `xid_age`: the oldest `age(datfrozenxid)` among databases that allow
//!   connections.
//! - `size_bytes`: `pg_database_size()`, only when a limit is configured,
//!   and at most once per `DATABASE_SIZE_EVERY_SECS`: it walks the
//!   database's files, which costs milliseconds on a database with tens of
//!   thousands of relations (BENCHMARKS.md).
//!
//! Every catalog read here is open to any role: the health role needs no
//! grant. A reading that cannot be made is `null`, said in the log, and
//! never decides the status by itself.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_postgres::SimpleQueryMessage;

use crate::component::{BuildContext, Check, CheckContext, Component, Settings, StartupError};
use crate::db::pool::lock;
use crate::env::{number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{Aggregate, CheckOutcome, MetricSet, Reason, Status, Unit};

pub const COMPONENT: Component = Component {
    name: "database",
    enabled_by_default: true,
    uses_postgres: true,
    read_settings,
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

fn read_settings(env: &dyn Source) -> Result<Box<dyn Settings>, ConfigError> {
    Ok(Box::new(DatabaseSettings::from_source(env)?))
}

impl DatabaseSettings {
    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let connections_degraded_pct = number(env, "DATABASE_CONNECTIONS_DEGRADED_PCT", 90, 1, 100)?;
        let xid_age_degraded = number(
            env,
            "DATABASE_XID_AGE_DEGRADED",
            1_300_000_000,
            1,
            XID_AGE_UNHEALTHY - 1,
        )?;
        let degraded_pct = number(env, "DATABASE_SIZE_DEGRADED_PCT", 80, 1, 100)?;
        let every_secs = number(env, "DATABASE_SIZE_EVERY_SECS", 300, 0, 86_400)?;
        let size = env
            .get("DATABASE_SIZE_LIMIT_BYTES")
            .map(|raw| parse_size(&raw))
            .transpose()?
            .map(|limit_bytes| SizeLimit {
                limit_bytes,
                degraded_pct,
                every: Duration::from_secs(every_secs),
            });
        Ok(Self {
            connections_degraded_pct,
            xid_age_degraded,
            size,
        })
    }
}

/// Largest size limit taken: far beyond any plan, and small enough that
/// `limit × percent` never overflows.
const MAX_SIZE_LIMIT: u64 = 1 << 60;

/// `DATABASE_SIZE_LIMIT_BYTES`: a number of bytes, or a number with `MB`,
/// `GB` or `TB` (powers of 1,024; case and a space before the unit do not
/// matter).
fn parse_size(raw: &str) -> Result<u64, ConfigError> {
    let refused = || {
        ConfigError::new(
            "DATABASE_SIZE_LIMIT_BYTES",
            "expected a number of bytes, or a number with MB, GB or TB (e.g. 500MB, 8GB), at most 1 EiB",
        )
    };
    let text = raw.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" => 0,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        _ => return Err(refused()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|bytes| (1..=MAX_SIZE_LIMIT).contains(bytes))
        .ok_or_else(refused)
}

impl Settings for DatabaseSettings {
    fn build(&self, _context: &BuildContext) -> Result<Box<dyn Check>, StartupError> {
        Ok(Box::new(DatabaseCheck {
            statement: statement(false),
            statement_with_size: statement(true),
            thresholds: self.clone(),
            size: Mutex::default(),
        }))
    }
}

/// The statement, with the size reading or a NULL in its place. Simple
/// protocol, no parameters: it runs through transaction-mode poolers.
/// (Public for `make bench`, which times it against `SELECT 1`.)
///
/// Its shape is kept cheap to plan, since planning is most of its cost:
/// `current_setting()` rather than the `pg_settings` view (which builds
/// every setting), `pg_stat_get_activity()` rather than the
/// `pg_stat_activity` view (which joins two catalogs), one pass over
/// `pg_database` for the transaction-ID age and this database's oid, one
/// over `pg_db_role_setting` for the two settings Postgres keeps there
/// (its `name=value` array read as text: a boolean's value never needs
/// the quoting that would change that text).
pub fn statement(with_size: bool) -> String {
    let size = if with_size {
        // The privilege test keeps a role that may not read the size from
        // failing the whole statement: its reading is NULL instead.
        "CASE WHEN has_database_privilege(current_database(), 'CONNECT') \
              THEN pg_database_size(current_database()) END"
    } else {
        "NULL::bigint"
    };
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

    fn parse(row: &tokio_postgres::SimpleQueryRow) -> Option<Self> {
        let flag = |i: usize| match row.get(i) {
            Some("t") => Some(Some(true)),
            Some("f") => Some(Some(false)),
            None => Some(None),
            Some(_) => None,
        };
        let count = |i: usize| row.get(i).map(str::parse::<u64>).transpose().ok();
        let limit = row.get(5)?.parse::<i64>().ok()?;
        Some(Self {
            in_recovery: flag(0)??,
            session_read_only: flag(1)??,
            database_read_only: flag(2)?,
            role_sets_it: flag(3)??,
            connections_used: count(4)??,
            connections_limit: u64::try_from(limit).ok().filter(|&l| l > 0),
            xid_age: count(6)?,
            size_bytes: count(7)?,
        })
    }
}

/// The size's latest reading and when it was last asked for.
#[derive(Default)]
struct SizeSample {
    asked: Option<Instant>,
    bytes: Option<u64>,
}

struct DatabaseCheck {
    statement: String,
    statement_with_size: String,
    thresholds: DatabaseSettings,
    size: Mutex<SizeSample>,
}

impl Check for DatabaseCheck {
    fn run<'a>(
        &'a self,
        context: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Result<CheckOutcome, Failure>> {
        Box::pin(self.observe(context))
    }
}

impl DatabaseCheck {
    /// Whether this evaluation reads the size. The time is taken when
    /// asked, not when answered: a size that cannot be read in time is not
    /// asked for again at every evaluation.
    fn size_due(&self) -> bool {
        let Some(limit) = &self.thresholds.size else {
            return false;
        };
        let mut sample = lock(&self.size);
        let due = sample.asked.is_none_or(|at| at.elapsed() >= limit.every);
        if due {
            sample.asked = Some(Instant::now());
        }
        due
    }

    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let with_size = self.size_due();
        let sql = if with_size {
            &self.statement_with_size
        } else {
            &self.statement
        };
        let messages = context.postgres()?.simple_query(sql).await?;
        let mut readings = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .and_then(Readings::parse)
            .ok_or_else(|| Failure::new(Reason::BadResponse, "unexpected database readings"))?;
        if self.thresholds.size.is_some() {
            let mut sample = lock(&self.size);
            if with_size {
                sample.bytes = readings.size_bytes;
            }
            readings.size_bytes = sample.bytes;
        }
        Ok(judge_readings(&readings, &self.thresholds))
    }
}

/// Each rule in order, worst first: read-only, no free slot, wraparound
/// near its hard point → unhealthy; slots nearly taken, transaction IDs
/// past the warning age, size near the limit → degraded. The first rule
/// that holds gives the reason; the log text names every one that holds,
/// and every reading that could not be made.
pub fn judge_readings(readings: &Readings, thresholds: &DatabaseSettings) -> CheckOutcome {
    let r = readings;
    let mut all = Aggregate::default();
    let mut notes = Vec::new();
    match r.read_only() {
        Some(true) => all.add(Status::Unhealthy, Some(Reason::ReadOnly), Some(
            if r.in_recovery {
                "the server is in recovery (a standby): it takes no writes".to_owned()
            } else {
                "default_transaction_read_only is on for the server or the database: every new transaction is read-only".to_owned()
            },
        )),
        Some(false) => {}
        None => notes.push(
            "read_only unknown: this role sets default_transaction_read_only itself \
             (ALTER ROLE … SET), which hides the server's value"
                .to_owned(),
        ),
    }
    match r.connections_limit {
        Some(limit) if r.connections_used >= limit => all.add(Status::Unhealthy, Some(Reason::ConnectionsExhausted), Some(
            format!("{} of {limit} client connection slots in use", r.connections_used),
        )),
        Some(limit) if r.connections_used * 100 >= limit * thresholds.connections_degraded_pct => {
            all.add(Status::Degraded, Some(Reason::ConnectionsNearLimit), Some(
                format!(
                    "{} of {limit} client connection slots in use (at least {}%)",
                    r.connections_used, thresholds.connections_degraded_pct
                ),
            ))
        }
        Some(_) => {}
        None => notes.push("connections unknown: the settings leave no slot to a non-superuser".into()),
    }
    match r.xid_age {
        Some(age) if age >= XID_AGE_UNHEALTHY => all.add(Status::Unhealthy, Some(Reason::WraparoundNear), Some(
            format!("oldest datfrozenxid age {age}: Postgres refuses writes 40 million transactions on"),
        )),
        Some(age) if age >= thresholds.xid_age_degraded => all.add(Status::Degraded, Some(Reason::WraparoundNear), Some(
            format!("oldest datfrozenxid age {age} (at least {})", thresholds.xid_age_degraded),
        )),
        Some(_) => {}
        None => notes.push("xid_age unknown: no database allows connections".into()),
    }
    if let Some(size) = &thresholds.size {
        match r.size_bytes {
            Some(bytes)
                if u128::from(bytes) * 100
                    >= u128::from(size.limit_bytes) * u128::from(size.degraded_pct) =>
            {
                all.add(Status::Degraded, Some(Reason::SizeNearLimit), Some(
                    format!(
                        "database size {bytes} bytes of a {} byte limit (at least {}%)",
                        size.limit_bytes, size.degraded_pct
                    ),
                ))
            }
            Some(_) => {}
            None => notes.push("size_bytes unknown: this role may not read the database's size".into()),
        }
    }
    // Unknown readings after the rules that hold, in the log text.
    for note in notes {
        all.note(note);
    }
    let mut outcome = all.into_outcome();
    outcome.facts = vec![
        ("read_only", r.read_only().map_or(Value::Null, Value::Bool)),
        (
            "connections",
            r.connections_limit.map_or(Value::Null, |limit| {
                json!({"used": r.connections_used, "limit": limit})
            }),
        ),
        ("xid_age", r.xid_age.map_or(Value::Null, |a| json!(a))),
        ("size_bytes", r.size_bytes.map_or(Value::Null, |b| json!(b))),
    ];
    let mut values = Vec::new();
    if let Some(limit) = r.connections_limit {
        let percent = r.connections_used as f64 * 100.0 / limit as f64;
        values.push(("DatabaseConnectionsUsedPercent", Unit::Percent, (percent * 10.0).round() / 10.0));
    }
    if let Some(age) = r.xid_age {
        values.push(("DatabaseXidAge", Unit::Count, age as f64));
    }
    if let (Some(_), Some(bytes)) = (&thresholds.size, r.size_bytes) {
        values.push(("DatabaseSizeBytes", Unit::Bytes, bytes as f64));
    }
    if !values.is_empty() {
        outcome.metrics = vec![MetricSet {
            dimension: ("Component", "database".to_owned()),
            values,
        }];
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn defaults_and_refused_values_name_their_variable() {
        let t = thresholds(&[]).unwrap();
        assert_eq!((t.connections_degraded_pct, t.xid_age_degraded, t.size.clone()), (90, 1_300_000_000, None));
        for (key, value) in [
            ("DATABASE_CONNECTIONS_DEGRADED_PCT", "0"),
            ("DATABASE_CONNECTIONS_DEGRADED_PCT", "101"),
            ("DATABASE_XID_AGE_DEGRADED", "2107483648"),
            ("DATABASE_XID_AGE_DEGRADED", "0"),
            ("DATABASE_SIZE_DEGRADED_PCT", "0"),
            ("DATABASE_SIZE_EVERY_SECS", "-1"),
            ("DATABASE_SIZE_LIMIT_BYTES", "500 MiB"),
            ("DATABASE_SIZE_LIMIT_BYTES", "0"),
            ("DATABASE_SIZE_LIMIT_BYTES", "-5GB"),
            ("DATABASE_SIZE_LIMIT_BYTES", "99999999TB"),
            ("DATABASE_SIZE_LIMIT_BYTES", "1.5GB"),
        ] {
            assert_eq!(thresholds(&[(key, value)]).unwrap_err().variable, key, "{value}");
        }
        assert!(thresholds(&[("DATABASE_XID_AGE_DEGRADED", "2107483647")]).is_ok());
    }

    #[test]
    fn size_limits_take_bytes_or_binary_units() {
        for (raw, bytes) in [
            ("524288000", 524_288_000),
            ("500MB", 500 << 20),
            ("500 mb", 500 << 20),
            ("8GB", 8 << 30),
            ("1TB", 1 << 40),
        ] {
            assert_eq!(parse_size(raw).unwrap(), bytes, "{raw}");
        }
        let t = thresholds(&[("DATABASE_SIZE_LIMIT_BYTES", "500MB")]).unwrap();
        let size = t.size.unwrap();
        assert_eq!((size.degraded_pct, size.every), (80, Duration::from_secs(300)));
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
            (outcome.status, outcome.reason)
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
        assert_eq!((outcome.status, outcome.reason), (Status::Healthy, None));
        let facts: serde_json::Map<String, Value> =
            outcome.facts.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        assert_eq!(
            Value::Object(facts),
            json!({"read_only": null, "connections": null, "xid_age": null, "size_bytes": null})
        );
        let log = outcome.error.unwrap();
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
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.facts[0], ("read_only", json!(false)));
        assert_eq!(outcome.facts[1], ("connections", json!({"used": 5, "limit": 57})));
        let names: Vec<_> = outcome.metrics[0].values.iter().map(|v| v.0).collect();
        assert_eq!(names, ["DatabaseConnectionsUsedPercent", "DatabaseXidAge", "DatabaseSizeBytes"]);
        assert_eq!(outcome.metrics[0].values[0].2, 8.8);
    }
}
