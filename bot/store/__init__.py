"""Postgres store: connection pool, versioned migrations and the embedded default server."""
