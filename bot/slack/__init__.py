"""Everything that talks to Slack: the Web API client, posting, the outbox, delivery dedupe and notices."""
