-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- The database statement's pg_db_role_setting part alone (database 5: postgres on a fresh cluster).
SELECT bool_or(rtrim(split_part(split_part(s.setconfig::text, 'default_transaction_read_only=', 2), ',', 1), '}')::bool) FILTER (WHERE s.setrole = 0) , count(*) FILTER (WHERE s.setrole = to_regrole(quote_ident(session_user)) AND s.setdatabase IN (0, 5)) > 0 FROM pg_db_role_setting s WHERE position('default_transaction_read_only=' IN s.setconfig::text) > 0
