-- The slowest statements by mean execution time, from pg_stat_statements when it is installed
-- and preloaded; no rows (not an error) when it is not. query_to_xml runs the inner query only
-- when the extension is usable, so the check works on every server.
WITH usable AS (
  SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')
         AND current_setting('shared_preload_libraries') LIKE '%%pg_stat_statements%%' AS ok
)
SELECT s.mean_ms, s.max_ms, s.calls, s.total_ms, s.query
FROM usable,
     XMLTABLE('/table/row' PASSING (
       CASE WHEN usable.ok THEN query_to_xml(
         'SELECT round(mean_exec_time::numeric, 1) AS mean_ms, round(max_exec_time::numeric, 1) AS max_ms,
                 calls, round(total_exec_time::numeric, 1) AS total_ms, left(query, 200) AS query
          FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY mean_exec_time DESC LIMIT 10', false, false, '')
       END)
     COLUMNS mean_ms float8, max_ms float8, calls bigint, total_ms float8, query text) AS s
ORDER BY s.mean_ms DESC
