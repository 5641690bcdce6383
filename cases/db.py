"""Engines, sessions and schema migrations for the case store (SQLite embedded, PostgreSQL scaled).

>>> import tempfile, os
>>> from sqlalchemy import text
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> Session = session_factory(make_engine(url))
>>> with Session() as s:
...     s.scalar(text("select count(*) from cases"))
0
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL and a busy timeout, and its folder is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # Web requests and pipeline workers share the engine across threads.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL lets the review UI read while a worker writes.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit, so services can return them to callers.
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (creating it on first use)."""
    cfg = AlembicConfig(str(ALEMBIC_INI))
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
