-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- The database statement's readings that need no catalog: recovery and settings.
select pg_is_in_recovery(), current_setting('default_transaction_read_only')::bool, current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - coalesce(current_setting('reserved_connections', true)::int, 0)
