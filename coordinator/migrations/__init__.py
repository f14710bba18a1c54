"""Alembic migrations of the metadata schema (see coordinator/migrate.py)."""
