-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- The workers component's grouping statement (its function's), thresholds 60 s and 900 s.
SELECT kind, nullif(version, ''), count(*) FILTER (WHERE last_seen_at >= now() - 60 * interval '1 second'), count(*) FILTER (WHERE last_seen_at < now() - 60 * interval '1 second'), extract(epoch FROM max(started_at) FILTER (WHERE last_seen_at >= now() - 60 * interval '1 second'))::float8 FROM monitoring.worker_heartbeats WHERE last_seen_at >= now() - 900 * interval '1 second' GROUP BY 1, 2
