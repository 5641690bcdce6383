"""Alembic migrations of the case store (shipped with the package)."""
