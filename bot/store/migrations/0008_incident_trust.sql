-- An incident a commander can trust (issue #16): the symptom the declarer named (it picked the
-- diagnosis runbook), the topic last set (so the same text is never set twice), and the ts of every
-- copy of the card posted in the channel (`/incident status`), so each is kept in step.
ALTER TABLE incidents
    ADD COLUMN symptom     text,
    ADD COLUMN topic       text,
    ADD COLUMN card_copies text[] NOT NULL DEFAULT '{}';
