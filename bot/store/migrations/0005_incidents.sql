-- Incidents and their timeline. Timeline entries carry a source key so a Slack retry or a repeated
-- reaction never adds the same entry twice, and removing a 📌 removes exactly the entry it added.
CREATE SEQUENCE incident_seq;

CREATE TABLE incidents (
    id                 text        PRIMARY KEY,
    title              text        NOT NULL,
    severity           text        NOT NULL CHECK (severity IN ('p0', 'p1', 'p2', 'p3')),
    status             text        NOT NULL DEFAULT 'investigating'
                           CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
    service            text,
    security_sensitive boolean     NOT NULL DEFAULT false,
    channel_id         text        UNIQUE,
    channel_name       text,
    card_ts            text,
    commander          text,
    comms_lead         text,
    scribe             text,
    declared_by        text        NOT NULL,
    declared_at        timestamptz NOT NULL DEFAULT now(),
    resolved_by        text,
    resolved_at        timestamptz,
    summary            text,
    root_cause         text,
    last_update        text,
    last_update_at     timestamptz
);

CREATE INDEX incidents_open ON incidents (declared_at) WHERE status <> 'resolved';

CREATE TABLE timeline_events (
    id          bigserial   PRIMARY KEY,
    incident_id text        NOT NULL REFERENCES incidents (id),
    at          timestamptz NOT NULL,
    kind        text        NOT NULL,
    actor       text,
    text        text        NOT NULL,
    message_ts  text,
    source_key  text        NOT NULL,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (incident_id, source_key)
);

CREATE INDEX timeline_events_incident ON timeline_events (incident_id, at);
