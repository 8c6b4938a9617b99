"""Alerts in: receivers for Alertmanager, Grafana and generic notifications, routes, and the alert store."""
