//! The `database` component: whether MeshHook can write, now and tomorrow.
//!
//! `SELECT 1` succeeds on a database that MeshHook cannot use: Supabase
//! puts a project whose disk fills into read-only mode (`ALTER SYSTEM SET
//! default_transaction_read_only = on` and a reload), a `DATABASE_URL` may
//! point at a replica, the client connection slots may all be taken (ours is
//! already open; MeshHook's next one is refused), transaction IDs may near
//! wraparound, a Free project may near its size limit. So each
//! evaluation reads, on its shared session (still one round trip):
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
//!
//! Where `migrate` has created `monitoring.database_readings_v1()` (the
//! statement in a PL/pgSQL function) the check calls it: Postgres keeps a
//! function's plan for the session, where a statement sent inline — an
//! unnamed one, all a transaction pooler takes — is planned at every
//! evaluation, which costs more than executing it. The first evaluation,
//! and a role that cannot call the function, read inline instead ([`Planned`]):
//! plain reads of the settings and catalogs, from which `inline.rs` derives
//! the same readings — cheaper than the statement on a fresh server session.
//! The readings are made afresh at every evaluation either way.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use parking_lot::Mutex;
use tokio_postgres::types::Type;

use crate::component::{
    read, Asked, BuildContext, Check, CheckContext, Component, RunCheck, Settings, StartupError,
};
use crate::db::{Planned, Session, Statement};
use crate::env::{number, ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::{CheckOutcome, Reason};

mod inline;
mod readings;
pub(crate) use readings::judge_readings;
use readings::FIGURES;
pub use readings::{DatabaseSettings, Readings, SizeLimit, XID_AGE_UNHEALTHY};
use readings::FUNCTION;
// The function's statement is public only to `make bench` and
// `examples/first_statement.rs`, which time it.
#[cfg(feature = "test-seams")]
pub use readings::statement;

/// The inline statements' text, in order (public only to
/// `examples/first_statement.rs`, which times them).
#[cfg(feature = "test-seams")]
pub fn inline_statements(with_size: bool) -> Vec<String> {
    inline::statements(with_size)
        .iter()
        .map(|s| s.sql().to_owned())
        .collect()
}

pub const COMPONENT: Component = Component {
    name: "database",
    enabled_by_default: true,
    critical_by_default: true,
    private: false,
    uses_postgres: true,
    read_settings: read::<DatabaseSettings>,
    figures: FIGURES,
};

impl Settings for DatabaseSettings {
    fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
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

    fn build(self: Arc<Self>, _context: &BuildContext) -> Result<Box<dyn RunCheck>, StartupError> {
        let planned = |with_size: bool| Reading {
            inline: inline::statements(with_size),
            function: Planned::new(
                FUNCTION,
                Statement::new("SELECT * FROM monitoring.database_readings_v1($1)")
                    .bind(with_size, Type::BOOL),
            ),
        };
        Ok(Box::new(DatabaseCheck {
            reading: planned(false),
            reading_with_size: planned(true),
            settings: self,
            size: Mutex::default(),
        }))
    }
}

/// The readings on `client` both ways (a test seam: the tests keep them
/// equal on a real server): from the inline statements, derived here, and
/// from the function's statement sent as a statement of its own.
#[cfg(feature = "test-seams")]
pub async fn readings_both_ways(
    client: &tokio_postgres::Client,
    with_size: bool,
) -> Result<(Readings, Readings), tokio_postgres::Error> {
    let mut answers = Vec::new();
    for inline in inline::statements(with_size) {
        answers.push(client.query_typed(inline.sql(), &[]).await?);
    }
    let inline = inline::readings(&answers).expect("the inline statements' rows");
    let row = client.query_one(&statement(with_size), &[]).await?;
    Ok((inline, Readings::from_row(&row)?))
}

/// Largest size limit taken: far beyond any plan, and small enough that
/// `limit × percent` never overflows.
const MAX_SIZE_LIMIT: u64 = 1 << 60;

/// `DATABASE_SIZE_LIMIT_BYTES`: a number of bytes, or a number with `MB`,
/// `GB` or `TB` — powers of 1,024, as Supabase's plans count them — or
/// their IEC spellings `MiB`, `GiB`, `TiB` (case and a space before the
/// unit do not matter).
fn parse_size(raw: &str) -> Result<u64, ConfigError> {
    let refused = || {
        ConfigError::new(
            "DATABASE_SIZE_LIMIT_BYTES",
            "expected a number of bytes, or a number with MB, GB or TB (powers of 1024; MiB, GiB, TiB too), e.g. 500MB, 8GiB; at most 1 EiB",
        )
    };
    let text = raw.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let shift = match unit.trim_start().to_ascii_uppercase().as_str() {
        "" => 0,
        "MB" | "MIB" => 20,
        "GB" | "GIB" => 30,
        "TB" | "TIB" => 40,
        _ => return Err(refused()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|bytes| (1..=MAX_SIZE_LIMIT).contains(bytes))
        .ok_or_else(refused)
}


/// The size's latest reading and when it was last asked for.
#[derive(Default)]
struct SizeSample {
    asked: Asked,
    bytes: Option<u64>,
}

/// One way of reading: with the size or without.
struct Reading {
    /// [`inline::statements`], sent on the first evaluation.
    inline: Vec<Statement>,
    /// Through [`FUNCTION`] when it can be called.
    function: Planned,
}

impl Reading {
    async fn read(&self, session: &Session<'_>) -> Result<Readings, Failure> {
        let unexpected = || Failure::new(Reason::BadResponse, "unexpected database readings");
        let inline = async {
            // Every answer awaited, so that no statement is left in flight.
            let answers = join_all(self.inline.iter().map(|s| session.query(s))).await;
            let rows = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
            inline::readings(&rows).map_err(|_| unexpected())
        };
        let from_function = |rows: Vec<tokio_postgres::Row>| {
            rows.first()
                .map(Readings::from_row)
                .and_then(Result::ok)
                .ok_or_else(unexpected)
        };
        self.function.read(session, inline, from_function).await
    }
}

struct DatabaseCheck {
    reading: Reading,
    reading_with_size: Reading,
    settings: Arc<DatabaseSettings>,
    size: Mutex<SizeSample>,
}

impl DatabaseCheck {
    /// Whether this evaluation reads the size (see [`Asked`]).
    fn size_due(&self) -> bool {
        let Some(limit) = &self.settings.size else {
            return false;
        };
        self.size.lock().asked.due(limit.every, false)
    }
}

impl Check for DatabaseCheck {
    async fn observe(&self, context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        let with_size = self.size_due();
        let reading = if with_size {
            &self.reading_with_size
        } else {
            &self.reading
        };
        let session = context.postgres()?;
        let negotiation = session.database().negotiation();
        let mut readings = reading.read(session).await?;
        if self.settings.size.is_some() {
            let mut sample = self.size.lock();
            if with_size {
                sample.bytes = readings.size_bytes;
            }
            readings.size_bytes = sample.bytes;
        }
        let mut outcome = judge_readings(&readings, &self.settings);
        outcome
            .facts
            .push(("sslnegotiation", negotiation.name().into()));
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(pairs: &[(&str, &str)]) -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::from_source(&crate::env::pairs(pairs))
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
            ("DATABASE_SIZE_LIMIT_BYTES", "500 MiBs"),
            ("DATABASE_SIZE_LIMIT_BYTES", "500 KB"),
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
            ("500 MiB", 500 << 20),
            ("8GiB", 8 << 30),
            ("1 tib", 1 << 40),
        ] {
            assert_eq!(parse_size(raw).unwrap(), bytes, "{raw}");
        }
        let t = thresholds(&[("DATABASE_SIZE_LIMIT_BYTES", "500MB")]).unwrap();
        let size = t.size.unwrap();
        assert_eq!((size.degraded_pct, size.every), (80, Duration::from_secs(300)));
    }
}
