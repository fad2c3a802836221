-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- The database statement's pg_database part alone (xid age, this database's oid).
SELECT max(age(datfrozenxid)) FILTER (WHERE datallowconn) AS xid_age, max(oid) FILTER (WHERE datname = current_database()) AS oid FROM pg_database
