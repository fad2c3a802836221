//! The private `tenancy` component against a real Postgres set up as a
//! Supabase project with MeshHook's tenant tables as its migrations
//! (11e288f) leave them (`support::tenancy`), with the default privileges of
//! projects created before May 30, 2026 and since. Each finding is checked
//! against the truth: what `anon` and `authenticated` really read. Then
//! the documented repair, and each rule broken once more.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::tenancy::{meshhook, partitions_from, project, Migrations, Privileges};
use crate::support::wait::eventually;
use crate::support::{as_role, docs, get, verbose, Stack};
use http::StatusCode;
use serde_json::{json, Value};

/// A stack watching the database and tenancy (read at every evaluation)
/// on a project with `privileges` and MeshHook's schema after `migrations`.
async fn stack_on(privileges: Privileges, migrations: Migrations) -> Stack {
    let mut stack = Stack::new().await;
    stack
        .set("HEALTH_COMPONENTS", "database,tenancy")
        .set("TENANCY_EVERY_SECS", "0");
    stack.sql(&project(privileges)).await;
    stack.sql(&meshhook(migrations)).await;
    stack
}

/// (HTTP status, the verbose body, its tenancy entry).
async fn answer(stack: &Stack) -> (StatusCode, Value, Value) {
    let answer = verbose(&stack.app()).await;
    let body = answer.json();
    let entry = body["checks"]["tenancy"].clone();
    (answer.status, body, entry)
}

/// The entry's findings as `(lint, object)`.
fn findings(entry: &Value) -> BTreeSet<(String, String)> {
    entry["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("findings: {entry}"))
        .iter()
        .map(|f| {
            (
                f["lint"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Whether the entry finds `lint` on `object`.
fn has(entry: &Value, lint: &str, object: &str) -> bool {
    findings(entry).contains(&(lint.to_owned(), object.to_owned()))
}

fn set_of(lint: &str, objects: &[String]) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .map(|o| (lint.to_owned(), o.clone()))
        .collect()
}

fn names(objects: &[&str]) -> Vec<String> {
    objects.iter().map(|o| (*o).to_owned()).collect()
}

/// The real binary with exactly `env` and `args`.
fn run(
    env: &[(&str, &str)],
    stack_env: Option<&std::collections::HashMap<String, String>>,
    args: &[&str],
) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"));
    command.env_clear();
    if let Some(stack_env) = stack_env {
        command.envs(stack_env);
    }
    command
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

/// A superuser session on the stack's database.
async fn session(stack: &Stack) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&stack.env["DATABASE_URL"], tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client
}

/// `public.workflow_events`' partitions, schema-qualified.
async fn partitions(stack: &Stack) -> Vec<String> {
    session(stack)
        .await
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE i.inhparent = 'public.workflow_events'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The rows `role` (with no user id in the request, as the publishable key
/// alone gives) reads from `object`, or the error it gets.
async fn rows_as(stack: &Stack, role: &str, object: &str) -> Result<i64, String> {
    let client = session(stack).await;
    client
        .batch_execute(&format!("SET ROLE {role}"))
        .await
        .unwrap();
    client
        .query_one(&format!("SELECT count(*) FROM {object}"), &[])
        .await
        .map(|row| row.get(0))
        .map_err(|e| {
            e.as_db_error()
                .map_or(e.to_string(), |d| d.code().code().to_owned())
        })
}

/// One tenant's project with a workflow, a run, an event and a secret.
const ONE_TENANT: &str = "WITH p AS (INSERT INTO public.projects (owner, name) VALUES (gen_random_uuid(), 'a') RETURNING id), \
       d AS (INSERT INTO public.workflow_definitions (project_id, slug) SELECT id, 'wf' FROM p RETURNING id, project_id), \
       s AS (INSERT INTO public.secrets (project_id, name, value_encrypted) SELECT id, 'k', 'x' FROM p), \
       r AS (INSERT INTO public.workflow_runs (project_id, workflow_id) SELECT project_id, id FROM d RETURNING id) \
     INSERT INTO public.workflow_events (run_id, type, payload) \
       SELECT id, 'webhook_received', '{\"headers\": {\"x-signature\": \"s\"}}' FROM r";

#[tokio::test]
async fn todays_meshhook_granted_by_default_leaks_the_event_log_and_the_public_body_never_says() {
    let mut stack = stack_on(Privileges::GrantedByDefault, Migrations::All).await;
    stack.sql(ONE_TENANT).await;
    let parts = partitions(&stack).await;
    assert_eq!(parts.len(), 3, "{parts:?}");

    let (status, body, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "unhealthy", "{entry}");
    assert_eq!(entry["reason"], "rls_disabled", "{entry}");
    assert_eq!(entry["private"], true, "{entry}");
    assert_eq!(entry["read_age_s"], 0, "{entry}");
    let mut leaked = names(&[
        "public.job_tracking",
        "public.queue_config",
        "public.workflow_events",
    ]);
    leaked.extend(parts.iter().cloned());
    assert_eq!(findings(&entry), set_of("rls_disabled_in_public", &leaked));

    // The truth behind the finding: the publishable key alone reads every
    // tenant's webhook payloads, through the table and its partition, and
    // may rewrite the queue settings; the tenant tables with policies
    // show it nothing.
    assert_eq!(
        rows_as(&stack, "anon", "public.workflow_events").await,
        Ok(1)
    );
    assert_eq!(rows_as(&stack, "anon", &parts[0]).await, Ok(1));
    assert_eq!(rows_as(&stack, "anon", "public.queue_config").await, Ok(2));
    assert_eq!(rows_as(&stack, "anon", "public.secrets").await, Ok(0));
    assert_eq!(
        rows_as(&stack, "authenticated", "public.workflow_runs").await,
        Ok(0)
    );

    // Private: the public status, HTTP code and body are those without it.
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("healthy"))
    );
    let public_with = get(&stack.app(), "/health").await;
    stack.set("HEALTH_COMPONENTS", "database");
    let public_without = get(&stack.app(), "/health").await;
    assert_eq!(public_with.status, public_without.status);
    assert_eq!(
        without_checked_at(&public_with.text),
        without_checked_at(&public_without.text)
    );
    assert!(
        !public_with.text.contains("tenancy"),
        "{}",
        public_with.text
    );
}

/// The body with its `checked_at` value blanked, byte for byte otherwise.
fn without_checked_at(body: &str) -> String {
    let at = body.find("\"checked_at\":\"").expect("checked_at") + "\"checked_at\":\"".len();
    let end = at + body[at..].find('"').unwrap();
    format!("{}{}", &body[..at], &body[end..])
}

#[tokio::test]
async fn before_migration_0009_the_workflows_view_reads_every_tenants_definitions() {
    let stack = stack_on(Privileges::GrantedByDefault, Migrations::UpTo0008).await;
    stack.sql(ONE_TENANT).await;
    let (_, _, entry) = answer(&stack).await;
    let found = findings(&entry);
    assert!(
        has(&entry, "security_definer_view", "public.workflows"),
        "{entry}"
    );
    // Not the views over tables without row-level security (their tables
    // are findings of their own), nor the one over the catalog.
    for view in [
        "public.job_statistics",
        "public.queue_monitoring",
        "public.workflow_events_partition_info",
    ] {
        assert!(!found.iter().any(|(_, o)| o == view), "{view}: {entry}");
    }
    // The truth: a signed-in user of no project reads another tenant's
    // workflow through the view, and nothing through the table.
    assert_eq!(
        rows_as(&stack, "authenticated", "public.workflows").await,
        Ok(1)
    );
    assert_eq!(
        rows_as(&stack, "authenticated", "public.workflow_definitions").await,
        Ok(0)
    );

    stack
        .sql("ALTER VIEW public.workflows SET (security_invoker = true)")
        .await;
    let (_, _, entry) = answer(&stack).await;
    assert!(
        !findings(&entry)
            .iter()
            .any(|(lint, _)| lint == "security_definer_view"),
        "{entry}"
    );
    assert_eq!(
        rows_as(&stack, "authenticated", "public.workflows").await,
        Ok(0)
    );
}

#[tokio::test]
async fn on_a_project_created_since_may_2026_nothing_leaks_and_the_pages_are_refused() {
    let stack = stack_on(Privileges::NotGranted, Migrations::All).await;
    stack.sql(ONE_TENANT).await;
    let (status, body, entry) = answer(&stack).await;
    let tenant_tables = names(&[
        "public.audit_log",
        "public.projects",
        "public.secrets",
        "public.workflow_definitions",
        "public.workflow_events",
        "public.workflow_runs",
    ]);
    let mut expected = set_of("tenant_table_not_granted", &tenant_tables);
    expected.insert((
        "tenant_table_rls_disabled".into(),
        "public.workflow_events".into(),
    ));
    assert_eq!(findings(&entry), expected, "{entry}");
    assert_eq!(
        (&entry["status"], &entry["reason"]),
        (&json!("unhealthy"), &json!("rls_disabled"))
    );
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("healthy"))
    );
    // The truth: no leak; MeshHook's pages get 42501.
    assert_eq!(
        rows_as(&stack, "anon", "public.workflow_events").await,
        Err("42501".into())
    );
    assert_eq!(
        rows_as(&stack, "authenticated", "public.projects").await,
        Err("42501".into())
    );

    // The documented repair and grant make it healthy.
    stack
        .sql(&docs::block(
            "MESHHOOK.md",
            "<!-- tenancy: repair -->",
            "sql",
        ))
        .await;
    stack
        .sql(&docs::block(
            "MESHHOOK.md",
            "<!-- tenancy: grant -->",
            "sql",
        ))
        .await;
    let (_, _, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
    assert_eq!(entry["findings"], json!([]));
    assert_eq!(
        rows_as(&stack, "authenticated", "public.projects").await,
        Ok(0)
    );
}

#[tokio::test]
async fn up_to_0008_on_a_new_project_the_explicit_grant_still_opens_the_view() {
    let stack = stack_on(Privileges::NotGranted, Migrations::UpTo0008).await;
    let (_, _, entry) = answer(&stack).await;
    assert!(
        has(&entry, "security_definer_view", "public.workflows"),
        "{entry}"
    );
}

#[tokio::test]
async fn the_documented_repair_makes_it_healthy_and_each_rule_breaks_once_more() {
    let stack = stack_on(Privileges::GrantedByDefault, Migrations::All).await;
    stack.sql(ONE_TENANT).await;
    stack
        .sql(&docs::block(
            "MESHHOOK.md",
            "<!-- tenancy: repair -->",
            "sql",
        ))
        .await;
    let (_, _, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
    assert_eq!(entry["findings"], json!([]));
    assert!(entry.get("reason").is_none(), "{entry}");
    assert_eq!(
        rows_as(&stack, "anon", "public.workflow_events").await,
        Ok(0)
    );
    let parts = partitions(&stack).await;
    assert_eq!(
        rows_as(&stack, "anon", &parts[0]).await,
        Err("42501".into())
    );

    // Next months' partitions, made as MeshHook makes them, are closed too.
    stack.sql(&partitions_from(3, 4)).await;
    assert_eq!(partitions(&stack).await.len(), 5);
    let (_, _, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");

    // (break, its finding and reason, the undo)
    let steps = [
        (
            "ALTER TABLE public.secrets DISABLE ROW LEVEL SECURITY",
            ("rls_disabled_in_public", "public.secrets", "unhealthy", "rls_disabled"),
            "ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY",
        ),
        (
            "DROP POLICY own_audit ON public.audit_log",
            ("rls_enabled_no_policy", "public.audit_log", "degraded", "no_policy"),
            "CREATE POLICY own_audit ON public.audit_log FOR SELECT \
               USING (project_id IN (SELECT public.user_project_ids()))",
        ),
        (
            "CREATE VIEW public.secrets_overview AS SELECT id, project_id, name FROM public.secrets; \
             GRANT SELECT ON public.secrets_overview TO anon",
            ("security_definer_view", "public.secrets_overview", "unhealthy", "rls_bypassed"),
            "ALTER VIEW public.secrets_overview SET (security_invoker = on)",
        ),
        (
            "REVOKE SELECT ON public.projects FROM authenticated",
            ("tenant_table_not_granted", "public.projects", "degraded", "not_granted"),
            "GRANT SELECT ON public.projects TO authenticated",
        ),
        (
            "ALTER TABLE public.audit_log RENAME TO audit_log_old",
            ("tenant_table_missing", "public.audit_log", "unhealthy", "schema_missing"),
            "ALTER TABLE public.audit_log_old RENAME TO audit_log",
        ),
    ];
    for (broken, (lint, object, status, reason), undo) in steps {
        stack.sql(broken).await;
        let (http, body, entry) = answer(&stack).await;
        assert_eq!(
            findings(&entry),
            set_of(lint, &[object.to_owned()]),
            "after {broken}: {entry}"
        );
        assert_eq!(
            (&entry["status"], &entry["reason"]),
            (&json!(status), &json!(reason)),
            "after {broken}"
        );
        assert_eq!(
            (http, &body["status"]),
            (StatusCode::OK, &json!("healthy")),
            "private: {broken}"
        );
        stack.sql(undo).await;
        let (_, _, entry) = answer(&stack).await;
        assert_eq!(entry["status"], "healthy", "after {undo}: {entry}");
    }
    // The truth behind `rls_bypassed`, once more: the view read as its
    // owner showed the secrets to the publishable key.
    stack
        .sql("ALTER VIEW public.secrets_overview RESET (security_invoker)")
        .await;
    assert_eq!(
        rows_as(&stack, "anon", "public.secrets_overview").await,
        Ok(1)
    );
}

#[tokio::test]
async fn only_what_the_browser_can_reach_and_the_app_owns_is_judged() {
    let mut stack = stack_on(Privileges::GrantedByDefault, Migrations::All).await;
    stack
        .sql(&docs::block(
            "MESHHOOK.md",
            "<!-- tenancy: repair -->",
            "sql",
        ))
        .await;
    stack
        .sql(
            "DO $$ BEGIN CREATE ROLE tenancy_plain_owner NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             CREATE TABLE public.extension_table (x int); \
             ALTER EXTENSION plpgsql ADD TABLE public.extension_table; \
             CREATE SCHEMA internal; CREATE TABLE internal.ledger (x int); \
             GRANT USAGE ON SCHEMA internal TO anon; GRANT SELECT ON internal.ledger TO anon; \
             CREATE VIEW public.own_secrets WITH (security_invoker) AS SELECT id FROM public.secrets; \
             REVOKE ALL ON public.own_secrets FROM anon, authenticated; \
             CREATE VIEW public.secret_ids AS SELECT id FROM public.own_secrets; \
             CREATE VIEW public.held_by_policies AS SELECT id FROM public.secrets; \
             GRANT SELECT ON public.secrets TO tenancy_plain_owner; \
             ALTER VIEW public.held_by_policies OWNER TO tenancy_plain_owner",
        )
        .await;
    let (_, _, entry) = answer(&stack).await;
    // An extension's table and a schema the Data API does not expose are
    // not judged; a view whose owner the policies hold bypasses nothing;
    // a view that reads through an invoker view runs as its own owner.
    assert_eq!(
        findings(&entry),
        set_of("security_definer_view", &names(&["public.secret_ids"])),
        "{entry}"
    );
    assert_eq!(
        rows_as(&stack, "anon", "public.held_by_policies").await,
        Ok(0)
    );

    stack.set("TENANCY_EXPOSED_SCHEMAS", "public,internal");
    let (_, _, entry) = answer(&stack).await;
    assert!(
        has(&entry, "rls_disabled_in_public", "internal.ledger"),
        "{entry}"
    );
}

#[tokio::test]
async fn a_role_with_no_grant_reads_what_it_needs() {
    let mut stack = stack_on(Privileges::GrantedByDefault, Migrations::UpTo0008).await;
    let (_, _, as_owner) = answer(&stack).await;
    stack
        .sql(
            "DO $$ BEGIN CREATE ROLE tenancy_reader LOGIN; \
              EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .await;
    let url = as_role(&stack.env["DATABASE_URL"], "tenancy_reader");
    stack.set("DATABASE_URL", &url);
    let (_, _, as_reader) = answer(&stack).await;
    assert_eq!(as_reader["status"], "unhealthy", "{as_reader}");
    assert_eq!(findings(&as_reader), findings(&as_owner));
}

#[tokio::test]
async fn the_catalog_is_read_at_most_every_tenancy_every_secs_and_the_finding_stands_with_its_age()
{
    let mut stack = stack_on(Privileges::GrantedByDefault, Migrations::All).await;
    stack.set("TENANCY_EVERY_SECS", "3600");
    let app = stack.app();
    let first = verbose(&app).await.json()["checks"]["tenancy"].clone();
    assert_eq!(first["reason"], "rls_disabled", "{first}");
    stack
        .sql(&docs::block(
            "MESHHOOK.md",
            "<!-- tenancy: repair -->",
            "sql",
        ))
        .await;
    // The same process keeps its reading: the next one is an hour away.
    let again = verbose(&app).await.json()["checks"]["tenancy"].clone();
    assert_eq!(
        (&again["reason"], &again["findings"]),
        (&first["reason"], &first["findings"])
    );
    assert!(again["read_age_s"].as_u64().is_some(), "{again}");
    // A fresh process reads at once.
    let fresh = verbose(&stack.app()).await.json()["checks"]["tenancy"].clone();
    assert_eq!(fresh["status"], "healthy", "{fresh}");

    // With a second between readings, the repair shows within seconds.
    stack.set("TENANCY_EVERY_SECS", "1");
    let app = stack.app();
    stack
        .sql("ALTER TABLE public.secrets DISABLE ROW LEVEL SECURITY")
        .await;
    let entry = verbose(&app).await.json()["checks"]["tenancy"].clone();
    assert_eq!(entry["reason"], "rls_disabled", "{entry}");
    stack
        .sql("ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY")
        .await;
    eventually("tenancy read again", Duration::from_secs(15), async || {
        let entry = verbose(&app).await.json()["checks"]["tenancy"].clone();
        (entry["status"] == "healthy").then_some(()).ok_or(entry)
    })
    .await;
}

#[tokio::test]
async fn a_private_component_cannot_be_made_critical_or_noncritical() {
    for variable in ["HEALTH_CRITICAL", "HEALTH_NONCRITICAL"] {
        let out = run(
            &[
                ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
                ("HEALTH_COMPONENTS", "database,tenancy"),
                (variable, "tenancy"),
            ],
            None,
            &["check"],
        );
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(variable) && stderr.contains("private"),
            "{stderr}"
        );
    }
}

/// Where the findings go: the log (every object), EMF and Prometheus (the
/// status only, never an object's name), the real binary in Lambda mode
/// and serve mode; the public answer never names the component.
#[tokio::test]
async fn a_leak_reaches_the_log_the_metrics_and_the_alarms_never_the_public_answer() {
    use crate::support::runtime_api::{event, RuntimeApi};
    let mut stack = stack_on(Privileges::GrantedByDefault, Migrations::All).await;
    let api = RuntimeApi::start(Vec::new()).await;
    let child = api.spawn_function(&stack.env);
    api.queue(&event("scheduler.json"), 1);
    let results = api.results(1, Duration::from_secs(20)).await;
    let stdout = child.kill_and_read_stdout();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(!results[0].1.contains("tenancy"), "{results:?}");
    assert!(
        results[0].1.contains(r#""status":"healthy""#),
        "{results:?}"
    );

    let documents: Vec<Value> = stdout
        .lines()
        .filter(|l| l.contains("_aws"))
        .map(crate::support::emf::check)
        .collect();
    let tenancy: Vec<&Value> = documents
        .iter()
        .filter(|d| d["Component"] == "tenancy")
        .collect();
    assert_eq!(tenancy.len(), 1, "{stdout}");
    assert_eq!(tenancy[0]["ComponentHealthy"], 0);
    assert!(
        documents
            .iter()
            .all(|d| !d.to_string().contains("workflow_events")),
        "{stdout}"
    );
    // `check` logs the evaluation on stderr; `check --verbose` prints the
    // private entry, and both exit on the public status.
    for args in [&["check"][..], &["check", "--verbose"]] {
        let out = run(&[], Some(&stack.env), args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = stderr
            .lines()
            .find(|l| l.contains("health evaluated"))
            .unwrap_or_else(|| panic!("no evaluation logged: {stderr}"));
        assert!(log.contains("WARN"), "{log}");
        for expected in [
            "rls_disabled",
            "rls_disabled_in_public",
            "public.workflow_events",
            "public.job_tracking",
        ] {
            assert!(log.contains(expected), "{expected}: {log}");
        }
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            printed["details"],
            json!({"database": "healthy"}),
            "{printed}"
        );
        let verbose = args.len() == 2;
        assert_eq!(
            printed["checks"]["tenancy"]["reason"].is_string(),
            verbose,
            "{printed}"
        );
    }

    stack.set("HEALTH_METRICS_TOKEN", "metrics-token-tenancy");
    let (addr, _server) = crate::support::spawn_serve(stack.app()).await;
    let metrics = crate::support::metrics_request(
        addr,
        http::Method::GET,
        Some("metrics-token-tenancy"),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        metrics.contains(
            r#"meshhook_health_component_status{component="tenancy",status="unhealthy"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"meshhook_health_status{status="healthy"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("workflow_events"), "{metrics}");
}
