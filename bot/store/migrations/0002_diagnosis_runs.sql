-- Every diagnosis a person asked for (a shared, coalesced result is recorded once per asker),
-- so incidents and post-incident reviews can say what was checked and what was red.
CREATE TABLE diagnosis_runs (
    id              bigserial   PRIMARY KEY,
    run_id          text        NOT NULL,
    runbook_id      text        NOT NULL,
    runbook_version integer     NOT NULL,
    params          jsonb       NOT NULL,
    overall         text        NOT NULL CHECK (overall IN ('ok', 'warn', 'crit', 'error')),
    shared          boolean     NOT NULL DEFAULT false,
    requested_by    text,
    channel         text,
    message_ts      text,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    result          jsonb       NOT NULL
);

CREATE INDEX diagnosis_runs_channel ON diagnosis_runs (channel, started_at);
CREATE INDEX diagnosis_runs_run_id ON diagnosis_runs (run_id);
