-- Checks fail closed (decision 14): a check that measured nothing is `unknown`; the status that
-- used to say so was called `error`. Stored runs are renamed too — the overall column and the
-- statuses inside `result` — so history reads the same words as new runs, and an old check's
-- probe error becomes its `reason`, as new outcomes carry it.
ALTER TABLE diagnosis_runs DROP CONSTRAINT diagnosis_runs_overall_check;

UPDATE diagnosis_runs SET overall = 'unknown' WHERE overall = 'error';

UPDATE diagnosis_runs
SET result = jsonb_set(
        CASE WHEN result ->> 'overall' = 'error'
             THEN jsonb_set(result, '{overall}', '"unknown"')
             ELSE result END,
        '{checks}',
        (SELECT coalesce(
                    jsonb_agg(
                        CASE WHEN c ->> 'status' = 'error'
                             THEN c || jsonb_build_object(
                                      'status', 'unknown',
                                      'reason', coalesce(c -> 'result' ->> 'error', ''))
                             ELSE c END
                        ORDER BY i),
                    '[]'::jsonb)
           FROM jsonb_array_elements(result -> 'checks') WITH ORDINALITY AS t (c, i)))
WHERE jsonb_typeof(result -> 'checks') = 'array'
  AND (result ->> 'overall' = 'error' OR result @? '$.checks[*] ? (@.status == "error")');

ALTER TABLE diagnosis_runs
    ADD CONSTRAINT diagnosis_runs_overall_check CHECK (overall IN ('ok', 'warn', 'crit', 'unknown'));
