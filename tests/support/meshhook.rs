//! A database of MeshHook's shape, written for these tests (not MeshHook's
//! own SQL): `workflow_runs` with its five statuses and a status index, the
//! event log `workflow_events` range-partitioned by month on `ts` with a
//! `(run_id, ts)` index per partition and no default partition, and
//! row-level security on both whose policies (to `public`) keep the rows
//! of projects owned by `auth.uid()` — a stand-in for Supabase's, which
//! reads the caller's user id from the request. And the real `migrate`
//! that makes the runs' function over it.

use std::collections::HashMap;
use std::process::Output;

/// The project every run belongs to.
pub const PROJECT: &str = "00000000-0000-0000-0000-0000000000aa";

/// Supabase's `auth.uid()`: the caller's user id, from the request's
/// claims as PostgREST sets them (none: `NULL`).
pub const AUTH_UID: &str = "CREATE SCHEMA auth; \
     CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS \
       $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;";

/// The schema, with monthly partitions from `months_back` months before
/// the current one to the next month.
pub fn schema(months_back: u32) -> String {
    format!(
        "{AUTH_UID} \
         CREATE TABLE projects (id uuid PRIMARY KEY, owner_id uuid NOT NULL); \
         INSERT INTO projects VALUES ('{PROJECT}', gen_random_uuid()); \
         CREATE TABLE workflow_runs ( \
           id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
           project_id uuid NOT NULL REFERENCES projects (id), \
           status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'paused', 'canceled')), \
           started_at timestamptz NOT NULL DEFAULT now(), \
           finished_at timestamptz); \
         CREATE INDEX workflow_runs_by_status ON workflow_runs (status); \
         CREATE TABLE workflow_events ( \
           id bigint GENERATED ALWAYS AS IDENTITY, \
           run_id uuid NOT NULL, \
           ts timestamptz NOT NULL DEFAULT now(), \
           type text NOT NULL, \
           payload jsonb NOT NULL DEFAULT '{{}}') PARTITION BY RANGE (ts); \
         DO $$ DECLARE month timestamptz; part text; BEGIN \
           FOR k IN -{months_back}..1 LOOP \
             month := date_trunc('month', now()) + make_interval(months => k); \
             part := 'workflow_events_' || to_char(month, 'YYYYMM'); \
             EXECUTE format('CREATE TABLE %I PARTITION OF workflow_events FOR VALUES FROM (%L) TO (%L)', \
                            part, month, month + interval '1 month'); \
             EXECUTE format('CREATE INDEX ON %I (run_id, ts)', part); \
           END LOOP; END $$; \
         ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY; \
         ALTER TABLE workflow_events ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY runs_of_own_projects ON workflow_runs FOR SELECT \
           USING (project_id IN (SELECT id FROM projects WHERE owner_id = auth.uid())); \
         CREATE POLICY events_of_own_runs ON workflow_events FOR SELECT \
           USING (run_id IN (SELECT id FROM workflow_runs));"
    )
}

/// One run with `status`, started `started_ago` seconds ago, with an event
/// at each of `events_ago` seconds ago.
pub fn run(status: &str, started_ago: u32, events_ago: &[u32]) -> String {
    let events: Vec<String> = events_ago.iter().map(u32::to_string).collect();
    format!(
        "WITH r AS (INSERT INTO workflow_runs (project_id, status, started_at) \
           VALUES ('{PROJECT}', '{status}', now() - make_interval(secs => {started_ago})) RETURNING id) \
         INSERT INTO workflow_events (run_id, ts, type) \
           SELECT r.id, now() - make_interval(secs => s), 'step' \
           FROM r, unnest('{{{}}}'::int[]) AS s;",
        events.join(",")
    )
}

/// `meshhook-health migrate` with `env`.
fn migrate(env: &HashMap<String, String>) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_meshhook-health"))
        .env_clear()
        .envs(env)
        .arg("migrate")
        .output()
        .expect("run meshhook-health migrate")
}

/// [`migrate`], which must succeed.
pub fn migrated(env: &HashMap<String, String>) {
    let out = migrate(env);
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
