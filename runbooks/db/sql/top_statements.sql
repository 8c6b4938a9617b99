-- The slowest statements by mean execution time. Runs only where pg_stat_statements is created and
-- loaded (the probe's `requires_extension`); elsewhere the probe says how to enable it instead.
SELECT round(mean_exec_time::numeric, 1) AS mean_ms,
       round(max_exec_time::numeric, 1) AS max_ms,
       calls,
       round(total_exec_time::numeric, 1) AS total_ms,
       left(query, 200) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY mean_exec_time DESC
LIMIT 10
