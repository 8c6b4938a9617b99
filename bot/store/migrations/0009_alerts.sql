-- Alerts in (issue #18): one row per alert group (one card, kept current), its alerts by
-- fingerprint, and what happened to the group. The group row is the lock every replica takes
-- (INSERT … ON CONFLICT DO UPDATE locks it until commit), so the card is posted once, the
-- diagnosis and an automatic declare are claimed once, and repeats change nothing twice.
CREATE TABLE alert_groups (
    id                 bigserial   PRIMARY KEY,
    source             text        NOT NULL,
    group_key          text        NOT NULL,
    route              text        NOT NULL,
    channel            text        NOT NULL,
    channel_id         text,
    card_ts            text,
    -- sha256 of the card as last drawn: an identical repeat does not redraw it.
    card_hash          text,
    status             text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity           text        CHECK (severity IN ('p0', 'p1', 'p2', 'p3')),
    service            text,
    runbook_id         text,
    declare            text        NOT NULL DEFAULT 'never' CHECK (declare IN ('auto', 'offer', 'never')),
    group_labels       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    common_labels      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    common_annotations jsonb       NOT NULL DEFAULT '{}'::jsonb,
    first_seen         timestamptz NOT NULL DEFAULT now(),
    last_seen          timestamptz NOT NULL DEFAULT now(),
    last_change        timestamptz NOT NULL DEFAULT now(),
    starts_at          timestamptz,
    resolved_at        timestamptz,
    acked_by           text,
    acked_at           timestamptz,
    silence_id         text,
    silenced_by        text,
    silence_until      timestamptz,
    silence_until_resolved boolean NOT NULL DEFAULT false,
    incident_id        text        REFERENCES incidents (id),
    incident_channel   text,
    -- an open incident of the group's service the card offers to attach to (route attach: false)
    attach_offer       text        REFERENCES incidents (id),
    diagnosed          boolean     NOT NULL DEFAULT false,
    diagnosed_severity text,
    declare_claimed    boolean     NOT NULL DEFAULT false,
    flapping           boolean     NOT NULL DEFAULT false,
    UNIQUE (source, group_key)
);

CREATE INDEX alert_groups_service ON alert_groups (service) WHERE status = 'firing';

CREATE TABLE alerts (
    group_id      bigint      NOT NULL REFERENCES alert_groups (id) ON DELETE CASCADE,
    fingerprint   text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz,
    generator_url text,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, fingerprint)
);

-- What happened to a group: new alerts, resolutions, re-firing, acknowledgement, silences,
-- incidents. `posted` marks the ones that became a thread reply (the flapping budget counts them).
CREATE TABLE alert_events (
    id          bigserial   PRIMARY KEY,
    group_id    bigint      NOT NULL REFERENCES alert_groups (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind        text        NOT NULL,
    fingerprint text,
    actor       text,
    text        text        NOT NULL,
    posted      boolean     NOT NULL DEFAULT false
);

CREATE INDEX alert_events_group ON alert_events (group_id, at);
