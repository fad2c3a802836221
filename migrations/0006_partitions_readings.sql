-- The partitions component's catalog reading (meshhook-health), as a
-- function: the statement the check otherwise sends inline, which Postgres
-- plans at every evaluation; a PL/pgSQL function's plan is kept for the
-- session. SECURITY INVOKER (the default): it reads what the calling role
-- may read, and resolves unqualified table names with the caller's
-- search_path, as the statement does. The caller needs USAGE on the schema
-- `monitoring`; without it the check sends the statement inline.
-- Kept equal to the check's statement by a test (src/checks/partitions.rs).
-- After 0001, which creates the schema `monitoring`.
-- Created, or replaced by its owner; left as it is when another role owns
-- it (`migrate` run by a second role): the name carries its version.
do $do$
begin
  if to_regprocedure('monitoring.partitions_readings_v1(text[])') is null
     or pg_has_role((select proowner from pg_proc
                     where oid = to_regprocedure('monitoring.partitions_readings_v1(text[])')), 'USAGE') then
    create or replace function monitoring.partitions_readings_v1(tables text[])
    returns table (
        table_name   text,
        table_kind   text,
        now_epoch    double precision,
        range_starts double precision[],
        range_ends   double precision[]
    )
    language plpgsql volatile
    -- One plan for the session, whatever the arguments: left to choose, the
    -- plan cache may re-plan at every call (a custom plan per argument).
    set plan_cache_mode = force_generic_plan
    as $function$
    #variable_conflict use_column
    begin
    return query
    SELECT t.name, CASE WHEN t.r IS NULL THEN 'missing' WHEN pt.partrelid IS NULL OR pt.partstrat <> 'r' OR pt.partnatts <> 1 OR a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN 'unsuitable' WHEN pt.partdefid <> 0 THEN 'default' ELSE 'ranges' END, extract(epoch FROM now())::float8, ranges.starts, ranges.ends FROM (SELECT u.name, u.n, to_regclass(u.name) AS r FROM unnest($1::text[]) WITH ORDINALITY AS u(name, n)) t LEFT JOIN pg_partitioned_table pt ON pt.partrelid = t.r LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] LEFT JOIN LATERAL (SELECT array_agg(CASE WHEN b LIKE 'FOR VALUES FROM (MINVALUE)%' THEN '-Infinity'::float8 ELSE extract(epoch FROM split_part(b, '''', 2)::timestamptz)::float8 END) AS starts, array_agg(CASE WHEN b LIKE '%TO (MAXVALUE)' THEN 'Infinity'::float8 WHEN b LIKE 'FOR VALUES FROM (MINVALUE)%' THEN extract(epoch FROM split_part(b, '''', 2)::timestamptz)::float8 ELSE extract(epoch FROM split_part(b, '''', 4)::timestamptz)::float8 END) AS ends FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = t.r AND pt.partstrat = 'r' AND pt.partnatts = 1 AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) OFFSET 0) bounds WHERE b LIKE 'FOR VALUES FROM %') ranges ON true ORDER BY t.n;
    end
    $function$;
  end if;
end
$do$;
