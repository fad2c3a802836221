-- The live_logs component's catalog reading (meshhook-health), as a
-- function: the statement the check otherwise sends inline, which Postgres
-- plans at every evaluation; a PL/pgSQL function's plan is kept for the
-- session. SECURITY INVOKER (the default): it reads what the calling role
-- may read. The caller needs USAGE on the schema `monitoring`; without it
-- the check sends the statement inline.
-- Kept equal to the check's statement by a test (src/checks/live_logs.rs).
-- After 0001, which creates the schema `monitoring`.
-- Created, or replaced by its owner; left as it is when another role owns
-- it (`migrate` run by a second role): the name carries its version.
do $do$
begin
  if to_regprocedure('monitoring.live_logs_readings_v1(text[], text)') is null
     or pg_has_role((select proowner from pg_proc
                     where oid = to_regprocedure('monitoring.live_logs_readings_v1(text[], text)')), 'USAGE') then
    create or replace function monitoring.live_logs_readings_v1(tables text[], publication text)
    returns table (
        table_name   text,
        table_exists boolean,
        published    boolean,
        row_security boolean,
        readable     boolean
    )
    language plpgsql volatile
    -- One plan for the session, whatever the arguments: left to choose, the
    -- plan cache may re-plan at every call (a custom plan per argument).
    set plan_cache_mode = force_generic_plan
    as $function$
    #variable_conflict use_column
    begin
    return query
    SELECT t.name, c.oid IS NOT NULL,  EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = $2 AND (p.puballtables  OR EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = c.oid)  OR EXISTS (SELECT 1 FROM pg_publication_namespace n  WHERE n.pnpubid = p.oid AND n.pnnspid = c.relnamespace))),  coalesce(c.relrowsecurity, false),  EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid = c.oid  AND pol.polcmd IN ('r', '*') AND pol.polpermissive)  FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)  LEFT JOIN pg_namespace s ON s.nspname = split_part(t.name, '.', 1)  LEFT JOIN pg_class c ON c.relnamespace = s.oid AND c.relname = split_part(t.name, '.', 2)  AND c.relkind IN ('r', 'p')  ORDER BY t.n;
    end
    $function$;
  end if;
end
$do$;
