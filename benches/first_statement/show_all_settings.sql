-- examples/first_statement.rs (SQL_FILES); BENCHMARKS.md, "Where the cold time went".
-- Tried as a replacement for pg_db_role_setting: the setting's source from pg_show_all_settings().
SELECT setting, source FROM pg_show_all_settings() WHERE name = 'default_transaction_read_only'
