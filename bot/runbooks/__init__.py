"""Runbooks as data: the model of a runbook file, the catalogue loader, and the diagnosis engine."""
