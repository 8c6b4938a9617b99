"""Post-incident review drafts built from what happened: record, timeline, thread, checks, actions."""
