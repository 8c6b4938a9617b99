"""Application services: one method per use case, called by every front door (Slack, schedules, CLI)."""
