//! The `database` component is healthy only when MeshHook can write: real
//! clusters put into Supabase's read-only mode, a streaming standby, client
//! slots filled by another role's sessions, transaction IDs and size past
//! lowered thresholds, and logins refused the way Supavisor and PgBouncer
//! refuse them.

use std::time::Duration;

use crate::support::net::{Behaviour, RawPeer};
use crate::support::pgbouncer::PgBouncer;
use crate::support::wait::eventually;
use crate::support::{as_role, until_healthy, verbose, Postgres, Stack};
use http::StatusCode;
use serde_json::Value;

/// Asks `url` (a serve process's `/health?verbose=1`) until `wanted`
/// holds of (status, body), or panics after 20 s with the last answer.
async fn serve_until(url: &str, wanted: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let client = crate::support::http_client();
    eventually("the wanted answer", Duration::from_secs(20), async || {
        let response = client
            .get(url)
            .bearer_auth(crate::support::DETAILS_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        let seen = (status, body);
        if wanted(seen.0, &seen.1) {
            Ok(seen)
        } else {
            Err(seen)
        }
    })
    .await
}

/// The backend pid of the checker's connection (application_name
/// meshhook-health); there must be exactly one.
async fn checker_backend(pg: &Postgres) -> String {
    let pids = pg
        .value(
            "postgres",
            "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'meshhook-health'",
        )
        .await
        .unwrap_or_default();
    assert!(
        !pids.is_empty() && !pids.contains(','),
        "one checker connection, got {pids:?}"
    );
    pids
}

/// An unprivileged login role: no grant beyond what PUBLIC has.
async fn plain_role(pg: &Postgres, name: &str) {
    pg.execute("postgres", &format!("CREATE ROLE {name} LOGIN"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supabase_read_only_mode_answers_500_read_only_on_the_pooled_session_and_lifting_it_200() {
    let pg = Postgres::dedicated();
    plain_role(&pg, "health").await;
    let mut stack = Stack::on(pg).await;
    let url = as_role(&stack.env["DATABASE_URL"], "health");
    stack.set("DATABASE_URL", &url);
    stack.sql("GRANT USAGE ON SCHEMA monitoring TO health; GRANT SELECT ON monitoring.worker_heartbeats TO health").await;
    let (_serve, health) = crate::support::serve_process(&stack.env);
    let verbose_url = format!("{health}?verbose=1");
    let (_, body) = serve_until(&verbose_url, |s, _| s == 200).await;
    assert_eq!(body["checks"]["database"]["read_only"], false, "{body}");
    let session = checker_backend(stack.pg()).await;

    // What Supabase does when a project's disk fills.
    stack
        .sql("ALTER SYSTEM SET default_transaction_read_only = on")
        .await;
    stack.sql("SELECT pg_reload_conf()").await;
    let (status, body) = serve_until(&verbose_url, |s, _| s != 200).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["details"]["database"], "unhealthy", "{body}");
    assert_eq!(body["checks"]["database"]["reason"], "read_only", "{body}");
    assert_eq!(body["checks"]["database"]["read_only"], true, "{body}");
    assert_eq!(
        checker_backend(stack.pg()).await,
        session,
        "the same pooled session saw it"
    );

    stack
        .sql("ALTER SYSTEM RESET default_transaction_read_only")
        .await;
    stack.sql("SELECT pg_reload_conf()").await;
    let (_, body) = serve_until(&verbose_url, |s, _| s == 200).await;
    assert_eq!(body["checks"]["database"]["read_only"], false, "{body}");

    // The database's own setting: MeshHook's next connection is read-only.
    stack
        .sql("ALTER DATABASE postgres SET default_transaction_read_only = on")
        .await;
    let (status, body) = serve_until(&verbose_url, |s, _| s != 200).await;
    assert_eq!(
        (status, &body["checks"]["database"]["reason"]),
        (500, &Value::from("read_only")),
        "{body}"
    );
    // From another database: new sessions of this one are read-only now.
    stack
        .pg()
        .execute(
            "template1",
            "ALTER DATABASE postgres RESET default_transaction_read_only",
        )
        .await;
    serve_until(&verbose_url, |s, _| s == 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_health_role_is_no_outage() {
    let mut stack = Stack::new().await;
    let role = format!("ro_{}", stack.db);
    stack
        .sql(&format!(
            "CREATE ROLE {role} LOGIN; ALTER ROLE {role} SET default_transaction_read_only = on; \
             GRANT USAGE ON SCHEMA monitoring TO {role}; GRANT SELECT ON monitoring.worker_heartbeats TO {role}"
        ))
        .await;
    let url = as_role(&stack.env["DATABASE_URL"], &role);
    stack.set("DATABASE_URL", &url);
    let app = stack.app();
    until_healthy(&app).await;
    let answer = verbose(&app).await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::OK, "{body}");
    assert_eq!(body["details"]["database"], "healthy", "{body}");
    // The role's own setting hides the server's: unknown, not a verdict.
    assert_eq!(
        body["checks"]["database"]["read_only"],
        Value::Null,
        "{body}"
    );

    // The database's setting still shows through the catalog, however it
    // is spelt and whatever else the database sets.
    stack
        .sql(&format!(
            "ALTER DATABASE {db} SET search_path = \"$user\", public, \"x,y\"; \
             ALTER DATABASE {db} SET default_transaction_read_only = true; \
             ALTER DATABASE {db} SET statement_timeout = '5s'",
            db = stack.db
        ))
        .await;
    let body = verbose(&app).await.json();
    assert_eq!(body["checks"]["database"]["reason"], "read_only", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_standby_answers_read_only() {
    let primary = Postgres::dedicated();
    let stack = Stack::on(primary).await;
    let Some(standby) = Postgres::standby_of(
        stack.pg(),
        "database::a_streaming_standby_answers_read_only",
    ) else {
        return;
    };
    let mut stack = stack;
    let url = stack.env["DATABASE_URL"].replace(
        &format!(":{}/", stack.pg().port()),
        &format!(":{}/", standby.port()),
    );
    stack.set("DATABASE_URL", &url);
    let app = stack.app();
    let (status, body) = eventually("read_only", Duration::from_secs(20), async || {
        let answer = verbose(&app).await;
        let body = answer.json();
        if body["checks"]["database"]["reason"] == "read_only" {
            Ok((answer.status, body))
        } else {
            Err(body)
        }
    })
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["checks"]["database"]["read_only"], true, "{body}");
    assert_eq!(body["details"]["workers"], "healthy", "reads work: {body}");
}

/// `n` idle sessions of `role` on `pg`, held until dropped.
async fn idle_sessions(pg: &Postgres, role: &str, n: usize) -> Vec<tokio_postgres::Client> {
    let mut held = Vec::new();
    for _ in 0..n {
        let url = as_role(&pg.url("postgres"), role);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        held.push(client);
    }
    held
}

/// The `connections` reading of `app`'s verbose body once it equals
/// `used` (backends that just closed linger for a moment).
async fn connections_used(app: &meshhook_health::App, used: u64) -> Value {
    eventually(
        &format!("{used} connections used"),
        Duration::from_secs(20),
        async || {
            let body = verbose(app).await.json();
            if body["checks"]["database"]["connections"]["used"] == used {
                Ok(body)
            } else {
                Err(body)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_slots_near_and_at_the_limit_degrade_then_fail() {
    // 20 slots, 3 reserved for superusers: 17 for MeshHook's roles.
    let pg = Postgres::dedicated_with(&["max_connections=20"]);
    plain_role(&pg, "other").await;
    plain_role(&pg, "nogrants").await;
    let stack = Stack::on(pg).await;
    // The checker connects as a superuser, so it still gets in when every
    // other slot is taken.
    let app = stack.app();
    until_healthy(&app).await;
    let mut env = stack.env.clone();
    env.insert(
        "DATABASE_URL".into(),
        as_role(&stack.env["DATABASE_URL"], "nogrants"),
    );
    env.insert("HEALTH_COMPONENTS".into(), "database".into());
    let config = meshhook_health::config::Config::from_source(&env).unwrap();
    let app_without_grants = meshhook_health::App::new(config).unwrap();
    until_healthy(&app_without_grants).await;

    // Both checkers, 5 sessions of another role: 7 used.
    let mut held = idle_sessions(stack.pg(), "other", 5).await;
    let body = connections_used(&app, 7).await;
    assert_eq!(
        body["checks"]["database"]["connections"]["limit"], 17,
        "{body}"
    );
    assert_eq!(body["details"]["database"], "healthy", "{body}");
    let superuser_view = stack
        .pg()
        .value(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    assert_eq!(superuser_view, "7");
    // A role with no grant sees other roles' sessions only in part, and
    // still counts them as Postgres does.
    let body = connections_used(&app_without_grants, 7).await;
    assert_eq!(body["details"]["database"], "healthy", "{body}");

    // 16 of 17 (at least 90%): degraded.
    held.extend(idle_sessions(stack.pg(), "other", 9).await);
    let body = connections_used(&app, 16).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(
        body["checks"]["database"]["reason"], "connections_near_limit",
        "{body}"
    );
    connections_used(&app_without_grants, 16).await;

    // Every non-superuser slot taken: MeshHook's next login is refused.
    held.extend(idle_sessions(stack.pg(), "other", 1).await);
    let body = connections_used(&app, 17).await;
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert_eq!(
        body["checks"]["database"]["reason"], "connections_exhausted",
        "{body}"
    );
    let refused = tokio_postgres::connect(
        &as_role(&stack.pg().url("postgres"), "other"),
        tokio_postgres::NoTls,
    )
    .await;
    let error = refused.err().expect("no slot left for a non-superuser");
    assert_eq!(
        error.as_db_error().map(|e| e.code().code()),
        Some("53300"),
        "{error}"
    );

    drop(held);
    let body = connections_used(&app, 2).await;
    assert_eq!(body["status"], "healthy", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_ids_past_the_warning_age_degrade_wraparound_near() {
    let mut stack = Stack::new().await;
    stack.set("DATABASE_XID_AGE_DEGRADED", "1");
    let app = stack.app();
    let answer = verbose(&app).await;
    let body = answer.json();
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "degraded answers 200: {body}"
    );
    assert_eq!(body["details"]["database"], "degraded", "{body}");
    assert_eq!(
        body["checks"]["database"]["reason"], "wraparound_near",
        "{body}"
    );
    assert!(
        body["checks"]["database"]["xid_age"].as_u64().unwrap() >= 1,
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_limit_just_above_the_database_size_degrades_size_near_limit() {
    let mut stack = Stack::new().await;
    let size: u64 = stack
        .pg()
        .value(&stack.db, "SELECT pg_database_size(current_database())")
        .await
        .unwrap()
        .parse()
        .unwrap();
    stack.set("DATABASE_SIZE_LIMIT_BYTES", &(size * 2).to_string());
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["details"]["database"], "healthy",
        "half the limit: {body}"
    );
    let measured = body["checks"]["database"]["size_bytes"].as_u64().unwrap();
    assert!(measured >= size, "{body}");

    stack.set("DATABASE_SIZE_LIMIT_BYTES", &(size + 64 * 1024).to_string());
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::OK, "{body}");
    assert_eq!(
        body["checks"]["database"]["reason"], "size_near_limit",
        "{body}"
    );

    // Read at most once per DATABASE_SIZE_EVERY_SECS: a database that grew
    // shows its new size only when the next reading is due.
    stack.set("DATABASE_SIZE_LIMIT_BYTES", "1TB");
    let app = stack.app();
    let first = verbose(&app).await.json()["checks"]["database"]["size_bytes"]
        .as_u64()
        .unwrap();
    stack
        .sql("CREATE TABLE grown AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 50000) g")
        .await;
    let again = verbose(&app).await.json()["checks"]["database"]["size_bytes"]
        .as_u64()
        .unwrap();
    assert_eq!(again, first, "sampled: the same reading within 300 s");
    stack.set("DATABASE_SIZE_EVERY_SECS", "0");
    let fresh = verbose(&stack.app()).await.json()["checks"]["database"]["size_bytes"]
        .as_u64()
        .unwrap();
    assert!(fresh > first + 4 * 1024 * 1024, "{fresh} vs {first}");

    // Without a limit the size is not read at all.
    stack.unset("DATABASE_SIZE_LIMIT_BYTES");
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["checks"]["database"]["size_bytes"],
        Value::Null,
        "{body}"
    );
}

/// `check` against a peer that refuses the login with `message`: the
/// database's reason, and the refusal named on stderr.
async fn refused_login(code: &'static str, message: &'static str) -> (Value, String) {
    let peer = RawPeer::start(Behaviour::RefuseLogin { code, message }).await;
    let mut stack = Stack::new().await;
    stack.set(
        "DATABASE_URL",
        &format!(
            "postgres://postgres.abcdefghijklmnopqrst@127.0.0.1:{}/postgres?sslmode=disable",
            peer.port
        ),
    );
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
        .arg("check")
        .env_clear()
        .envs(&stack.env)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "unhealthy");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let app = stack.app();
    let body = verbose(&app).await.json();
    (body, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supavisor_refusals_read_auth_and_connections_exhausted_and_are_logged() {
    let (body, stderr) = refused_login("XX000", "Tenant or user not found").await;
    assert_eq!(body["checks"]["database"]["reason"], "auth", "{body}");
    assert!(stderr.contains("Tenant or user not found"), "{stderr}");

    let (body, stderr) = refused_login(
        "XX000",
        "(EMAXCONN) max client connections reached, limit: 200",
    )
    .await;
    assert_eq!(
        body["checks"]["database"]["reason"], "connections_exhausted",
        "{body}"
    );
    assert!(
        stderr.contains("max client connections reached"),
        "{stderr}"
    );

    let (body, _) = refused_login(
        "XX000",
        "(EMAXCONNSESSION) max clients reached in session mode - max clients are limited to pool_size: 15",
    )
    .await;
    assert_eq!(
        body["checks"]["database"]["reason"], "connections_exhausted",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pgbouncer_reads_connections_exhausted() {
    let mut stack = Stack::new().await;
    let bouncer = PgBouncer::start_with(stack.pg(), 2, 2);
    // PgBouncer admits max_client_conn logins; the checker's is one more.
    let url = bouncer.url(&stack.db);
    let mut occupants = Vec::new();
    for _ in 0..2 {
        let (occupant, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        occupants.push(occupant);
    }
    stack.set("DATABASE_URL", &url);
    let body = verbose(&stack.app()).await.json();
    assert_eq!(
        body["checks"]["database"]["reason"], "connections_exhausted",
        "{body}"
    );
    drop(occupants);
}

/// The readings come from `monitoring.database_readings_v1()` when the
/// health role may call it, and from the same statement sent inline when it
/// may not (no `USAGE` on `monitoring`); either way the answer is the truth.
/// A doctored function (it claims read-only) shows which path answered.
#[tokio::test]
async fn the_migrated_function_answers_when_the_role_may_call_it_and_the_inline_statement_otherwise(
) {
    let mut stack = Stack::new().await;
    plain_role(stack.pg(), "database_fn_nousage").await;
    let healthy = stack.app();
    let body = verbose(&healthy).await.json();
    assert_eq!(body["checks"]["database"]["status"], "healthy", "{body}");
    assert_eq!(body["checks"]["database"]["read_only"], false, "{body}");
    stack
        .sql(
            "CREATE OR REPLACE FUNCTION monitoring.database_readings_v1(with_size boolean) \
             RETURNS TABLE (in_recovery boolean, session_read_only boolean, database_read_only boolean, \
             role_sets_it boolean, connections_used bigint, connections_limit integer, xid_age integer, \
             size_bytes bigint) LANGUAGE sql AS $$ SELECT true, true, NULL::boolean, false, 1::bigint, 90, 1, NULL::bigint $$",
        )
        .await;
    // The owner's app (the one that called the function before) calls it.
    let body = verbose(&healthy).await.json();
    assert_eq!(body["checks"]["database"]["reason"], "read_only", "{body}");
    // A role without USAGE on monitoring reads the truth inline, at once.
    let url = as_role(&stack.env["DATABASE_URL"], "database_fn_nousage");
    stack
        .set("DATABASE_URL", &url)
        .set("HEALTH_COMPONENTS", "database");
    let inline = stack.app();
    for _ in 0..2 {
        let body = verbose(&inline).await.json();
        assert_eq!(body["checks"]["database"]["status"], "healthy", "{body}");
        assert_eq!(body["checks"]["database"]["read_only"], false, "{body}");
        assert!(
            body["checks"]["database"]["connections"]["limit"].as_u64() > Some(1),
            "{body}"
        );
    }
    // Read-only mode as Supabase sets it reads the same on the inline path.
    let db = stack.db.clone();
    stack
        .sql(&format!(
            "ALTER DATABASE \"{db}\" SET default_transaction_read_only = on"
        ))
        .await;
    let body = verbose(&inline).await.json();
    assert_eq!(body["checks"]["database"]["reason"], "read_only", "{body}");
}

/// The first evaluation reads plain rows (settings, `pg_db_role_setting`,
/// `pg_database`, the activity) and derives the readings in the checker;
/// later ones call the function, which derives them on the server. Both
/// derivations agree, as a role with no grant (other roles' sessions
/// without their `backend_type`), in every way the read-only setting can
/// be kept: the database's, the role's, the role's in this database and in
/// another, spelled as `ALTER … SET` takes it, beside other settings. (A
/// cluster of its own: no other test's sessions come and go between the
/// two readings.)
#[tokio::test]
async fn the_inline_readings_equal_the_functions_statement_wherever_read_only_is_set() {
    let pg = Postgres::dedicated();
    let role = "database_both_ways";
    plain_role(&pg, role).await;
    // Sessions of another role, which this one sees without their kind.
    plain_role(&pg, "database_both_ways_other").await;
    let others = idle_sessions(&pg, "database_both_ways_other", 2).await;
    let scenarios = [
        ("SELECT 1".to_owned(), None, false),
        (
            "ALTER DATABASE postgres SET default_transaction_read_only = on".to_owned(),
            Some(true),
            false,
        ),
        (
            "ALTER DATABASE postgres SET search_path = 'a, \"b c\"'".to_owned(),
            Some(true),
            false,
        ),
        (
            "ALTER DATABASE postgres SET default_transaction_read_only = 'of'".to_owned(),
            Some(false),
            false,
        ),
        (
            format!("ALTER ROLE {role} SET default_transaction_read_only = yes"),
            Some(false),
            true,
        ),
        (format!("ALTER ROLE {role} RESET ALL"), Some(false), false),
        (
            format!(
                "ALTER ROLE {role} IN DATABASE template1 SET default_transaction_read_only = on"
            ),
            Some(false),
            false,
        ),
        (
            format!(
                "ALTER ROLE {role} IN DATABASE postgres SET default_transaction_read_only = '1'"
            ),
            Some(false),
            true,
        ),
    ];
    for (setup, database_read_only, role_sets_it) in scenarios {
        // From another database, which stays writable.
        pg.execute("template1", &setup).await;
        // A new session: settings apply at login.
        let url = as_role(&pg.url("postgres"), role);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        for with_size in [false, true] {
            let (inline, function) =
                meshhook_health::checks::database::readings_both_ways(&client, with_size)
                    .await
                    .unwrap();
            assert_eq!(inline, function, "{setup} (with size: {with_size})");
            assert_eq!(
                (inline.database_read_only, inline.role_sets_it),
                (database_read_only, role_sets_it),
                "{setup}"
            );
            assert!(inline.connections_used >= 3, "{setup}: {inline:?}");
            assert_eq!(inline.size_bytes.is_some(), with_size, "{setup}");
        }
    }
    drop(others);
}
