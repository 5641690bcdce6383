"""Alembic environment: runs on the connection `cases.db.upgrade` passes in, or on $DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from cases.models import Base


def _run(connection) -> None:
    # Batch mode lets later migrations alter tables on SQLite, which cannot ALTER most things.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL to the database to migrate")
    with create_engine(url).connect() as conn:
        _run(conn)
