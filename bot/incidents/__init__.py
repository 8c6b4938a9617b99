"""Incidents: declare, coordinate and resolve, with a timeline that misses nothing."""
