-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- The workers component's inline statement (a row per heartbeat, grouped by the checker), thresholds 60 s and 900 s.
SELECT kind, version, last_seen_at >= now() - 60 * interval '1 second', started_at FROM monitoring.worker_heartbeats WHERE last_seen_at >= now() - 900 * interval '1 second'
