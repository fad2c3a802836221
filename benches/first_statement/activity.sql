-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- The connections-in-use count alone (pg_stat_get_activity), simplified.
SELECT count(*) AS used FROM pg_stat_get_activity(NULL) a WHERE a.backend_type = 'client backend'
