-- Requests to run a risky action, and the two-person rule's state machine. Every transition is one
-- compare-and-set UPDATE on this table (the state, and for approvals the expiry, in its WHERE).
CREATE SEQUENCE approval_request_seq;

CREATE TABLE approval_requests (
    id                 text        PRIMARY KEY DEFAULT 'REQ-' || lpad(nextval('approval_request_seq')::text, 4, '0'),
    runbook_id         text        NOT NULL,
    runbook_version    integer     NOT NULL,
    action_id          text        NOT NULL,
    target             text,
    risk               text        NOT NULL,
    params             jsonb       NOT NULL,
    preview            jsonb,
    preview_digest     text        NOT NULL,
    binding_hash       text        NOT NULL,
    reason             text        NOT NULL,
    requester          text        NOT NULL,
    channel            text        NOT NULL,
    thread_ts          text,
    message_ts         text,
    state              text        NOT NULL DEFAULT 'requested' CHECK (state IN
                           ('requested', 'pending', 'approved', 'running', 'succeeded', 'failed',
                            'denied', 'expired', 'cancelled')),
    required_approvals integer     NOT NULL CHECK (required_approvals BETWEEN 1 AND 3),
    approvers          text[]      NOT NULL DEFAULT '{}',
    decided_by         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    decided_at         timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    result             jsonb,
    before_values      jsonb,
    after_values       jsonb,
    note               text
);

CREATE INDEX approval_requests_channel_state ON approval_requests (channel, state);
CREATE INDEX approval_requests_due ON approval_requests (expires_at) WHERE state = 'pending';
