-- The workers component's reading (meshhook-health), as a function: the
-- heartbeats grouped by kind and version. A statement sent inline is
-- planned at every evaluation; a PL/pgSQL function's plan is kept for the
-- session.
-- SECURITY INVOKER (the default): it reads what the calling role may read
-- (SELECT on monitoring.worker_heartbeats). The caller needs USAGE on the
-- schema `monitoring`; without it (and at a process's first evaluation) the
-- check reads a row per heartbeat inline and groups them itself.
-- Kept equal to the check's statement by a test (src/checks/workers).
-- After 0001, which creates the schema and the table.
-- Created, or replaced by its owner; left as it is when another role owns
-- it (`migrate` run by a second role): the name carries its version.
do $do$
begin
  if to_regprocedure('monitoring.worker_readings_v1(double precision, double precision)') is null
     or pg_has_role((select proowner from pg_proc
                     where oid = to_regprocedure('monitoring.worker_readings_v1(double precision, double precision)')), 'USAGE') then
    create or replace function monitoring.worker_readings_v1(stale_after_secs double precision,
                                                              forget_after_secs double precision)
    returns table (
        worker_kind        text,
        worker_version     text,
        alive              bigint,
        stale              bigint,
        newest_alive_start double precision
    )
    language plpgsql volatile
    -- One plan for the session, whatever the arguments: left to choose, the
    -- plan cache may re-plan at every call (a custom plan per argument).
    set plan_cache_mode = force_generic_plan
    as $function$
    #variable_conflict use_column
    begin
    return query
    SELECT kind, nullif(version, ''), count(*) FILTER (WHERE last_seen_at >= now() - $1 * interval '1 second'), count(*) FILTER (WHERE last_seen_at < now() - $1 * interval '1 second'), extract(epoch FROM max(started_at) FILTER (WHERE last_seen_at >= now() - $1 * interval '1 second'))::float8 FROM monitoring.worker_heartbeats WHERE last_seen_at >= now() - $2 * interval '1 second' GROUP BY 1, 2;
    end
    $function$;
  end if;
end
$do$;
