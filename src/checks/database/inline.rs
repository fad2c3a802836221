//! The database's readings without the function: what the first evaluation
//! sends (and every evaluation, when `monitoring.database_readings_v1()`
//! cannot be called). Five plain statements, pipelined on the evaluation's
//! session (one round trip), each answering what the server already holds —
//! settings, `pg_db_role_setting`, `pg_database`, the activity and the WAL
//! senders as they are — and [`readings`] derives here what the function's
//! statement derives on the server. On a fresh server session (a cold
//! start's first answer) they cost 0.8–1.5 ms less than
//! that statement, whose casts, string functions and aggregates the backend
//! must look up first (BENCHMARKS.md, "Where the cold time went"). A test
//! keeps both derivations equal on a real server.

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;

use super::readings::Readings;
use crate::db::Statement;

/// What needs no catalog: recovery, the session's settings, the database's
/// name and the session role's oid.
const SETTINGS: &str = "SELECT pg_is_in_recovery(), \
       current_setting('default_transaction_read_only'), \
       current_setting('max_connections'), \
       current_setting('superuser_reserved_connections'), \
       current_setting('reserved_connections', true), \
       current_database(), \
       to_regrole(quote_ident(session_user))";
/// Every database's and role's settings (`ALTER DATABASE … SET`, `ALTER
/// ROLE … SET`).
const ROLE_SETTINGS: &str = "SELECT setdatabase, setrole, setconfig FROM pg_db_role_setting";
/// Every database: its oid, its name, whether it takes connections, and the
/// age of its oldest unfrozen transaction ID.
const DATABASES: &str = "SELECT oid, datname, datallowconn, age(datfrozenxid) FROM pg_database";
/// Every server process Postgres tracks.
const ACTIVITY: &str = "SELECT backend_type, datid, usesysid, pid FROM pg_stat_get_activity(NULL)";
const WAL_SENDERS: &str = "SELECT pid FROM pg_stat_get_wal_senders()";
/// The size, when it is read (as the function's statement reads it).
const SIZE: &str = "SELECT CASE WHEN has_database_privilege(current_database(), 'CONNECT') \
       THEN pg_database_size(current_database()) END";

/// The statements, in the order [`readings`] takes their rows.
pub(super) fn statements(with_size: bool) -> Vec<Statement> {
    let size = with_size.then_some(SIZE);
    [SETTINGS, ROLE_SETTINGS, DATABASES, ACTIVITY, WAL_SENDERS]
        .into_iter()
        .chain(size)
        .map(Statement::new)
        .collect()
}

/// The setting whose value `pg_db_role_setting` may hold.
const READ_ONLY: &str = "default_transaction_read_only=";

/// The readings from the rows of [`statements`], in order.
pub(super) fn readings(answers: &[Vec<Row>]) -> Result<Readings, Unexpected> {
    let [settings, role_settings, databases, activity, wal_senders, size @ ..] = answers else {
        return Err(Unexpected);
    };
    let settings = settings.first().ok_or(Unexpected)?;
    let setting = |column: usize| -> Result<i64, Unexpected> {
        let text: Option<String> = settings.try_get(column)?;
        text.map_or(Ok(0), |t| t.parse().map_err(|_| Unexpected))
    };
    let session_read_only: String = settings.try_get(1)?;
    let limit = setting(2)? - setting(3)? - setting(4)?;
    let database: String = settings.try_get(5)?;
    let role: Option<Oid> = settings.try_get(6)?;

    let mut oid = None;
    let mut xid_age: Option<i32> = None;
    for row in databases {
        let (this, name, allows, age): (Oid, String, bool, i32) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        if allows {
            xid_age = xid_age.max(Some(age));
        }
        if name == database {
            oid = oid.max(Some(this.0));
        }
    }

    let mut database_read_only: Option<bool> = None;
    let mut role_sets_it = false;
    for row in role_settings {
        let (db, setrole): (Oid, Oid) = (row.try_get(0)?, row.try_get(1)?);
        let config: Option<Vec<Option<String>>> = row.try_get(2)?;
        let Some(value) = config
            .iter()
            .flatten()
            .flatten()
            .find_map(|entry| entry.strip_prefix(READ_ONLY))
        else {
            continue;
        };
        if setrole.0 == 0 && Some(db.0) == oid {
            let on = parse_bool(value).ok_or(Unexpected)?;
            database_read_only = Some(database_read_only.unwrap_or(false) || on);
        }
        if Some(setrole) == role && (db.0 == 0 || Some(db.0) == oid) {
            role_sets_it = true;
        }
    }

    let senders = wal_senders
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut used = 0;
    for row in activity {
        let kind: Option<String> = row.try_get(0)?;
        let (datid, usesysid): (Option<Oid>, Option<Oid>) = (row.try_get(1)?, row.try_get(2)?);
        let pid: i32 = row.try_get(3)?;
        let client = match kind.as_deref() {
            Some(kind) => kind == "client backend",
            None => datid.is_some() && usesysid.is_some() && !senders.contains(&pid),
        };
        used += u64::from(client);
    }

    let size_bytes = match size.first().and_then(|rows| rows.first()) {
        Some(row) => row.try_get::<_, Option<i64>>(0)?,
        None => None,
    };
    Ok(Readings {
        in_recovery: settings.try_get(0)?,
        session_read_only: parse_bool(&session_read_only).ok_or(Unexpected)?,
        database_read_only,
        role_sets_it,
        connections_used: used,
        connections_limit: u64::try_from(limit).ok().filter(|&l| l > 0),
        xid_age: xid_age.and_then(|a| u64::try_from(a).ok()),
        size_bytes: size_bytes.and_then(|b| u64::try_from(b).ok()),
    })
}

/// Rows not of the shape [`statements`] asks for.
#[derive(Debug)]
pub(super) struct Unexpected;

impl From<tokio_postgres::Error> for Unexpected {
    fn from(_: tokio_postgres::Error) -> Self {
        Self
    }
}

/// An `oid` column, or a `regrole` one (the same four bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Oid(u32);

impl<'a> FromSql<'a> for Oid {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(u32::from_be_bytes(raw.try_into()?)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::OID || *ty == Type::REGROLE
    }
}

/// A boolean as Postgres reads one (`boolin`): `true`, `false`, `yes`,
/// `no` or a prefix of one, `on`, `off` (at least two letters), `1`, `0`;
/// any case, blanks around it ignored.
fn parse_bool(text: &str) -> Option<bool> {
    let word = text.trim().to_ascii_lowercase();
    let prefix_of = |full: &str, least: usize| word.len() >= least && full.starts_with(&word);
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || word == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || word == "0" {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bool;

    #[test]
    fn booleans_read_as_postgres_reads_them() {
        for (text, value) in [
            ("on", Some(true)),
            ("off", Some(false)),
            (" ON ", Some(true)),
            ("of", Some(false)),
            ("o", None),
            ("t", Some(true)),
            ("tru", Some(true)),
            ("true", Some(true)),
            ("truer", None),
            ("yes", Some(true)),
            ("n", Some(false)),
            ("1", Some(true)),
            ("0", Some(false)),
            ("10", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(text), value, "{text:?}");
        }
    }
}
