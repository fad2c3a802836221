//! The `live_logs` component against a real Postgres set up as a Supabase
//! project is: the `supabase_realtime` publication exists and carries no
//! table until one is added. MeshHook's run console streams inserts on
//! `public.logs`, which none of MeshHook's migrations (11e288f) creates:
//! that is where the tests start, then they repair it step by step and
//! break each rule once more.

use crate::support::{verbose, Stack};
use http::StatusCode;
use serde_json::{json, Value};

/// A stack watching the database and the live logs, on a database with
/// Supabase's (empty) Realtime publication.
async fn stack_with_publication() -> Stack {
    let mut stack = Stack::new().await;
    stack.set("HEALTH_COMPONENTS", "database,live_logs");
    stack.sql("CREATE PUBLICATION supabase_realtime").await;
    stack
}

/// The table MeshHook's console subscribes to, as its component reads it
/// (`run_id`, a line), with row-level security and a policy for signed-in
/// users.
const LOGS: &str = "CREATE TABLE public.logs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
       run_id uuid NOT NULL, ts timestamptz NOT NULL DEFAULT now(), line text NOT NULL); \
     ALTER TABLE public.logs ENABLE ROW LEVEL SECURITY; \
     CREATE POLICY logs_of_own_runs ON public.logs FOR SELECT USING (true)";

/// (HTTP status, overall status, the component's entry). A fresh app's
/// first evaluation sends the statement inline, its second calls the
/// function `migrate` made (where the role may): both must read the same.
async fn answer(stack: &Stack) -> (StatusCode, Value, Value) {
    let app = stack.app();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let answer = verbose(&app).await;
        let body = answer.json();
        let mut entry = body["checks"]["live_logs"].clone();
        if let Some(entry) = entry.as_object_mut() {
            entry.remove("latency_ms");
        }
        seen.push((answer.status, body["status"].clone(), entry));
    }
    assert_eq!(seen[0], seen[1], "inline, then through the function");
    seen.remove(0)
}

#[tokio::test]
async fn todays_meshhook_has_no_logs_table_and_the_console_can_never_stream() {
    let mut stack = stack_with_publication().await;
    let (status, overall, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "unhealthy", "{entry}");
    assert_eq!(entry["reason"], "schema_missing", "{entry}");
    assert_eq!(entry["tables"], json!({"public.logs": "schema_missing"}));
    // Non-critical by default: the console is down, MeshHook runs on.
    assert_eq!((status, overall), (StatusCode::OK, json!("degraded")));

    stack.set("HEALTH_CRITICAL", "live_logs");
    let (status, overall, _) = answer(&stack).await;
    assert_eq!(
        (status, overall),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("unhealthy"))
    );
}

#[tokio::test]
async fn each_repair_is_seen_and_each_rule_breaks_once_more() {
    let stack = stack_with_publication().await;
    // (what was done, the table's verdict then)
    let steps = [
        (LOGS, "not_published"),
        (
            "ALTER PUBLICATION supabase_realtime ADD TABLE public.logs",
            "healthy",
        ),
        ("DROP POLICY logs_of_own_runs ON public.logs", "rows_hidden"),
        (
            "CREATE POLICY only_inserts ON public.logs FOR INSERT WITH CHECK (true)",
            "rows_hidden",
        ),
        (
            "CREATE POLICY all_of_it ON public.logs FOR ALL USING (true)",
            "healthy",
        ),
        (
            "ALTER TABLE public.logs DISABLE ROW LEVEL SECURITY",
            "healthy",
        ),
        (
            "ALTER PUBLICATION supabase_realtime DROP TABLE public.logs",
            "not_published",
        ),
        (
            "ALTER PUBLICATION supabase_realtime ADD TABLES IN SCHEMA public",
            "healthy",
        ),
        ("DROP PUBLICATION supabase_realtime", "not_published"),
        (
            "CREATE PUBLICATION supabase_realtime FOR ALL TABLES",
            "healthy",
        ),
        ("DROP TABLE public.logs", "schema_missing"),
    ];
    for (sql, expected) in steps {
        stack.sql(sql).await;
        let (status, overall, entry) = answer(&stack).await;
        assert_eq!(
            entry["tables"]["public.logs"], expected,
            "after {sql}: {entry}"
        );
        let healthy = expected == "healthy";
        assert_eq!(
            entry["status"],
            if healthy { "healthy" } else { "unhealthy" },
            "after {sql}"
        );
        assert_eq!(status, StatusCode::OK, "after {sql}: non-critical");
        assert_eq!(
            overall,
            if healthy { "healthy" } else { "degraded" },
            "after {sql}"
        );
        if !healthy {
            assert_eq!(entry["reason"], expected, "after {sql}");
        }
    }
}

#[tokio::test]
async fn the_documented_repair_makes_it_healthy_on_meshhooks_schema() {
    let stack = stack_with_publication().await;
    use crate::support::tenancy::{meshhook, project, Migrations, Privileges};
    stack.sql(&project(Privileges::GrantedByDefault)).await;
    stack.sql(&meshhook(Migrations::All)).await;
    let (_, _, entry) = answer(&stack).await;
    assert_eq!(entry["reason"], "schema_missing", "{entry}");
    let repair = crate::support::docs::block("MESHHOOK.md", "<!-- live-logs: repair -->", "sql");
    stack.sql(&repair).await;
    let (status, overall, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
    assert_eq!((status, overall), (StatusCode::OK, json!("healthy")));
}

#[tokio::test]
async fn a_role_with_no_grant_reads_what_it_needs() {
    let mut stack = stack_with_publication().await;
    stack.sql(LOGS).await;
    stack
        .sql("ALTER PUBLICATION supabase_realtime ADD TABLE public.logs")
        .await;
    stack
        .sql("DROP ROLE IF EXISTS live_logs_reader; CREATE ROLE live_logs_reader LOGIN")
        .await;
    let url = crate::support::as_role(&stack.env["DATABASE_URL"], "live_logs_reader");
    stack.set("DATABASE_URL", &url);
    let (_, _, entry) = answer(&stack).await;
    assert_eq!(entry["status"], "healthy", "{entry}");
    assert_eq!(entry["tables"], json!({"public.logs": "healthy"}));

    // Nor `USAGE` of the table's schema: the catalog still tells.
    stack
        .sql(
            "CREATE SCHEMA console; CREATE TABLE console.logs (run_id uuid, line text); \
              ALTER PUBLICATION supabase_realtime ADD TABLE console.logs",
        )
        .await;
    stack.set(
        "LIVE_LOGS_TABLES",
        "public.logs,console.logs,console.missing",
    );
    let (_, _, entry) = answer(&stack).await;
    assert_eq!(
        entry["tables"],
        json!({"public.logs": "healthy", "console.logs": "healthy", "console.missing": "schema_missing"}),
        "{entry}"
    );
}
