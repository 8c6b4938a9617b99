-- Alert cards drawn outside the group's lock (issue #19): a notification changes the group and
-- bumps `version`; the card painter draws the newest state when Slack's budget allows and notes
-- `drawn_version`. `paint_lease` lets one replica at a time draw a card without holding a
-- connection while it waits for Slack; a lease left by a dead replica expires. `card_claimed`
-- says a post of the first card was attempted, so the next painter looks for it before posting.
-- Thread replies wait as `pending` events and go out merged once the group has settled.
ALTER TABLE alert_groups
    ADD COLUMN version       bigint      NOT NULL DEFAULT 1,
    ADD COLUMN drawn_version bigint      NOT NULL DEFAULT 0,
    ADD COLUMN paint_lease   timestamptz,
    ADD COLUMN card_claimed  boolean     NOT NULL DEFAULT false;

ALTER TABLE alert_events ADD COLUMN pending boolean NOT NULL DEFAULT false;

CREATE INDEX alert_groups_unpainted ON alert_groups (id) WHERE drawn_version < version;
CREATE INDEX alert_events_pending ON alert_events (group_id) WHERE pending;
