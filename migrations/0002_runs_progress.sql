-- Runs progress for meshhook-health's `runs` component (docs/OPERATIONS.md,
-- "Least-privilege database role"). Created by `meshhook-health migrate`
-- as the owner of the tables, so that it reads every row whatever the
-- tables' row-level security; callers see aggregates only. Grant EXECUTE to
-- the health role; nobody else may call it.
create schema if not exists monitoring;
create or replace function monitoring.runs_progress(stalled_after_secs integer, lookback_secs integer)
returns table (runs_table text, events_table text, in_flight bigint, stalled bigint,
               oldest_stalled_secs bigint, last_progress_secs bigint, rows_hidden boolean)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $body$
begin
    return query
    with progress as (
        select coalesce(
                   (select max(e.ts) from public.workflow_events e
                     where e.run_id = r.id
                       and e.ts >= now() - make_interval(secs => lookback_secs)),
                   r.started_at) as progress_at
          from public.workflow_runs r
         where r.status = 'running'
           and r.started_at >= now() - make_interval(secs => lookback_secs)
         limit 10000
    )
    select 'public.workflow_runs'::text, 'public.workflow_events'::text,
           count(*),
           count(*) filter (where p.progress_at <= now() - make_interval(secs => stalled_after_secs)),
           coalesce(floor(extract(epoch from now() - min(p.progress_at)
                   filter (where p.progress_at <= now() - make_interval(secs => stalled_after_secs))))::bigint, 0),
           case when count(*) > 0
                then greatest(floor(extract(epoch from now() - max(p.progress_at)))::bigint, 0) end,
           row_security_active('public.workflow_runs') or row_security_active('public.workflow_events')
      from progress p;
end
$body$;
revoke all on function monitoring.runs_progress(integer, integer) from public;
