"""Alembic migrations of the market database (SQLite and PostgreSQL)."""
