-- The database component's readings (meshhook-health), as a function. A
-- statement sent inline is planned at every evaluation; a PL/pgSQL
-- function's plan is kept for the session.
-- SECURITY INVOKER (the default): it reads what the calling role may read,
-- no more. EXECUTE is PUBLIC's, as for any new function; the caller needs
-- USAGE on the schema `monitoring`. Without it (and at a process's first
-- evaluation) the check reads the same inline: plain reads of the settings
-- and catalogs, from which it derives these columns itself.
-- Kept equal to the check's statement by a test (src/checks/database).
-- After 0001, which creates the schema `monitoring`.
-- Created, or replaced by its owner; left as it is when another role owns
-- it (`migrate` run by a second role): the name carries its version.
do $do$
begin
  if to_regprocedure('monitoring.database_readings_v1(boolean)') is null
     or pg_has_role((select proowner from pg_proc
                     where oid = to_regprocedure('monitoring.database_readings_v1(boolean)')), 'USAGE') then
    create or replace function monitoring.database_readings_v1(with_size boolean)
    returns table (
        in_recovery        boolean,
        session_read_only  boolean,
        database_read_only boolean,
        role_sets_it       boolean,
        connections_used   bigint,
        connections_limit  integer,
        xid_age            integer,
        size_bytes         bigint
    )
    language plpgsql volatile
    -- One plan for the session, whatever the arguments: left to choose, the
    -- plan cache may re-plan at every call (a custom plan per argument).
    set plan_cache_mode = force_generic_plan
    as $function$
    #variable_conflict use_column
    begin
    return query
    SELECT pg_is_in_recovery(),  current_setting('default_transaction_read_only')::bool,  rs.database_read_only, rs.role_sets_it, act.used,  current_setting('max_connections')::int  - current_setting('superuser_reserved_connections')::int  - coalesce(current_setting('reserved_connections', true)::int, 0),  d.xid_age, CASE WHEN with_size AND has_database_privilege(current_database(), 'CONNECT') THEN pg_database_size(current_database()) END  FROM (SELECT max(age(datfrozenxid)) FILTER (WHERE datallowconn) AS xid_age,  max(oid) FILTER (WHERE datname = current_database()) AS oid  FROM pg_database) d,  LATERAL (SELECT bool_or(rtrim(split_part(split_part(s.setconfig::text,  'default_transaction_read_only=', 2), ',', 1), '}')::bool)  FILTER (WHERE s.setrole = 0 AND s.setdatabase = d.oid) AS database_read_only,  count(*) FILTER (WHERE s.setrole = to_regrole(quote_ident(session_user))  AND s.setdatabase IN (0, d.oid)) > 0 AS role_sets_it  FROM pg_db_role_setting s  WHERE position('default_transaction_read_only=' IN s.setconfig::text) > 0) rs,  (SELECT count(*) AS used FROM pg_stat_get_activity(NULL) a  WHERE a.backend_type = 'client backend'  OR (a.backend_type IS NULL AND a.datid IS NOT NULL AND a.usesysid IS NOT NULL  AND a.pid NOT IN (SELECT pid FROM pg_stat_get_wal_senders()))) act;
    end
    $function$;
  end if;
end
$do$;
