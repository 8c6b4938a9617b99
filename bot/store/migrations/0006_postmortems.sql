-- Post-incident review drafts, one row per generated version, and the human edits that every
-- regeneration keeps (summary, impact, root cause written by people win over derived text).
CREATE TABLE postmortems (
    incident_id text        NOT NULL REFERENCES incidents (id),
    version     integer     NOT NULL,
    markdown    text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, version)
);

CREATE TABLE postmortem_edits (
    incident_id    text        PRIMARY KEY REFERENCES incidents (id),
    summary        text,
    impact         text,
    users_affected text,
    root_cause     text,
    updated_by     text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
