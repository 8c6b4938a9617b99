"""Block Kit rendering, kept within Slack's limits (see blocks.py for the limits themselves)."""
