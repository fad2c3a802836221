//! A Supabase project's database with MeshHook's tenant tables, written for
//! these tests (not MeshHook's own SQL): the state MeshHook's nine
//! migrations (11e288f) leave where tenant isolation is concerned, checked
//! against them applied in order to a real Postgres.
//!
//! - Supabase's roles `anon`, `authenticated` and `service_role` (cluster
//!   roles, created once), `USAGE` on `public` for them, and `auth.uid()`
//!   reading the caller's user id from the request, as PostgREST sets it;
//! - [`Privileges`]: the default privileges of a project created before May
//!   30, 2026 (every new table in `public` granted to the three roles), or
//!   of one created since (none);
//! - the six tenant tables with row-level security and MeshHook's policies
//!   (rows of the projects the user owns), except `workflow_events`, which
//!   migration 0003 replaced with a table partitioned by month **without**
//!   row-level security or policies, and its monthly partitions named as
//!   MeshHook names them (`workflow_events_yYYYYmMM`);
//! - the workers' `job_tracking` and `queue_config` (two rows), without
//!   row-level security; pgmq (its own SQL) with MeshHook's two queues; the
//!   views `job_statistics`, `queue_monitoring` and
//!   `workflow_events_partition_info` without `security_invoker`;
//! - the `workflows` view over `workflow_definitions`, granted to
//!   `authenticated`: with `security_invoker` since migration 0009, without
//!   it before.

/// The default privileges a project's `public` schema has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privileges {
    /// Projects created before May 30, 2026: every table created in
    /// `public` is granted to `anon`, `authenticated` and `service_role`.
    GrantedByDefault,
    /// Projects created since: nothing is granted unless a migration says so.
    NotGranted,
}

/// MeshHook's migrations applied: all nine, or up to 0008 (before the
/// `workflows` view got `security_invoker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    All,
    UpTo0008,
}

/// The cluster's Supabase roles (idempotent: tests share the cluster) and
/// the database's `auth.uid()`, schema usage and default privileges.
pub fn project(privileges: Privileges) -> String {
    let defaults = match privileges {
        Privileges::GrantedByDefault => {
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
               GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO anon, authenticated, service_role;"
        }
        Privileges::NotGranted => "",
    };
    format!(
        "DO $$ DECLARE r text; BEGIN \
           FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP \
             BEGIN EXECUTE format('CREATE ROLE %I NOLOGIN', r); \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; \
           END LOOP; END $$; \
         {auth_uid} \
         GRANT USAGE ON SCHEMA public, auth TO anon, authenticated, service_role; \
         {defaults}",
        auth_uid = super::meshhook::AUTH_UID,
    )
}

/// MeshHook's schema as `migrations` leave it, on a [`project`].
pub fn meshhook(migrations: Migrations) -> String {
    let workflows = match migrations {
        Migrations::All => {
            "CREATE VIEW public.workflows WITH (security_invoker = true) AS \
               SELECT id, project_id, slug AS name, definition FROM public.workflow_definitions; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON public.workflows TO authenticated;"
        }
        Migrations::UpTo0008 => {
            "CREATE VIEW public.workflows AS \
               SELECT id, project_id, slug AS name, definition FROM public.workflow_definitions; \
             GRANT SELECT ON public.workflows TO authenticated;"
        }
    };
    format!(
        "CREATE TABLE public.projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner uuid NOT NULL, name text); \
         CREATE TABLE public.secrets (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
           project_id uuid NOT NULL REFERENCES public.projects ON DELETE CASCADE, name text, value_encrypted text); \
         CREATE TABLE public.workflow_definitions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
           project_id uuid NOT NULL REFERENCES public.projects ON DELETE CASCADE, slug text, \
           version int NOT NULL DEFAULT 1, definition jsonb NOT NULL DEFAULT '{{}}'); \
         CREATE TABLE public.workflow_runs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
           project_id uuid NOT NULL REFERENCES public.projects ON DELETE CASCADE, \
           workflow_id uuid REFERENCES public.workflow_definitions ON DELETE CASCADE, \
           status text NOT NULL DEFAULT 'running', started_at timestamptz NOT NULL DEFAULT now()); \
         CREATE TABLE public.audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
           project_id uuid REFERENCES public.projects ON DELETE CASCADE, user_id uuid, action text NOT NULL, \
           created_at timestamptz NOT NULL DEFAULT now()); \
         CREATE FUNCTION public.user_project_ids() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER \
           SET search_path = public AS $$ SELECT id FROM public.projects WHERE owner = auth.uid() $$; \
         ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY; \
         ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY; \
         ALTER TABLE public.workflow_definitions ENABLE ROW LEVEL SECURITY; \
         ALTER TABLE public.workflow_runs ENABLE ROW LEVEL SECURITY; \
         ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY own_projects ON public.projects FOR ALL USING (owner = auth.uid()); \
         CREATE POLICY own_secrets ON public.secrets FOR ALL \
           USING (project_id IN (SELECT public.user_project_ids())); \
         CREATE POLICY own_definitions ON public.workflow_definitions FOR ALL \
           USING (project_id IN (SELECT public.user_project_ids())); \
         CREATE POLICY own_runs ON public.workflow_runs FOR ALL \
           USING (project_id IN (SELECT public.user_project_ids())); \
         CREATE POLICY own_audit ON public.audit_log FOR SELECT \
           USING (project_id IN (SELECT public.user_project_ids())); \
         CREATE TABLE public.workflow_events (id bigint GENERATED ALWAYS AS IDENTITY, \
           run_id uuid NOT NULL, ts timestamptz NOT NULL DEFAULT now(), type text NOT NULL, \
           payload jsonb NOT NULL DEFAULT '{{}}', PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts); \
         {partitions} \
         CREATE TABLE public.queue_config (queue_name text PRIMARY KEY, visibility_timeout_s int NOT NULL); \
         INSERT INTO public.queue_config VALUES ('workflow_jobs', 30), ('workflow_jobs_dlq', 0); \
         CREATE TABLE public.job_tracking (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
           message_id bigint, status text NOT NULL, started_at timestamptz, completed_at timestamptz); \
         {pgmq} \
         SELECT pgmq.create('workflow_jobs'); SELECT pgmq.create('workflow_jobs_dlq'); \
         CREATE VIEW public.job_statistics AS SELECT status, count(*) AS jobs FROM public.job_tracking GROUP BY status; \
         CREATE VIEW public.queue_monitoring AS \
           SELECT 'workflow_jobs' AS queue, count(*) AS depth FROM pgmq.q_workflow_jobs \
           UNION ALL SELECT 'workflow_jobs_dlq', count(*) FROM pgmq.q_workflow_jobs_dlq; \
         CREATE VIEW public.workflow_events_partition_info AS \
           SELECT schemaname, tablename AS partition_name FROM pg_tables \
           WHERE schemaname = current_schema() AND tablename LIKE 'workflow_events_y%'; \
         {workflows}",
        partitions = partitions_from(0, 2),
        pgmq = super::pgmq::install_sql(),
    )
}

/// Monthly partitions of `public.workflow_events` from `from` to `to`
/// months after the current one, named and made as MeshHook's
/// `create_workflow_events_partition` names and makes them.
pub fn partitions_from(from: i32, to: i32) -> String {
    format!(
        "DO $$ DECLARE month date; part text; BEGIN \
           FOR k IN {from}..{to} LOOP \
             month := date_trunc('month', now()) + make_interval(months => k); \
             part := 'workflow_events_y' || to_char(month, 'YYYY') || 'm' || to_char(month, 'MM'); \
             EXECUTE format('CREATE TABLE IF NOT EXISTS public.%I PARTITION OF public.workflow_events \
                             FOR VALUES FROM (%L) TO (%L)', part, month, month + interval '1 month'); \
           END LOOP; END $$;"
    )
}
