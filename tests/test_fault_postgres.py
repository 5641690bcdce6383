"""Issue 28 item 5: PostgreSQL drops the replay's connections while it runs (its backends terminated, as a server
restart does to them; gentler on the shared server than restarting it). Every case is filed once: pooled
connections the server dropped are replaced (pool_pre_ping), and a case whose transaction the drop cut off is
opened again on a new connection (CaseService.open_case), found by its event id if its commit had landed."""

from __future__ import annotations

import threading

import psycopg
import pytest
from conftest import PG_ADMIN, postgres_database
from fault_scenario import write_scenario
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from cases.models import Case
from cases.service import CaseService
from cases.verify import verify_all
from feixian.config import load_config
from feixian.runtime import Runtime, replay

pytestmark = pytest.mark.postgres

POINTS = 4


class BackendKiller:
    """Terminates every backend of one database but the killer's own; counts the faults that hit something."""

    def __init__(self, url: str):
        self.database = url.rsplit("/", 1)[1]
        self.admin = psycopg.connect(PG_ADMIN, autocommit=True)
        self.faults = 0
        self.lock = threading.Lock()

    def kill(self) -> None:
        with self.lock:
            killed = self.admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            ).fetchall()
            self.faults += bool(killed)


def inject(killer: BackendKiller, monkeypatch):
    """Two faults per case: every connection dropped before it is opened (the pool holds dead ones), and its own
    connection dropped inside its first transaction, just before the commit. Returns the session listener and the
    event ids whose first transaction a drop was fired in."""
    opened = CaseService.open_case
    cut: set[str] = set()

    def open_after_a_drop(self, record):
        killer.kill()
        return opened(self, record)

    def drop_before_commit(session: Session) -> None:
        # By the commit the case row is flushed (in the identity map, not `new`); its first transition is new.
        opening = [o for o in session.identity_map.values() if isinstance(o, Case)]
        if opening and session.new and opening[0].event_id not in cut:
            cut.add(opening[0].event_id)
            killer.kill()

    monkeypatch.setattr(CaseService, "open_case", open_after_a_drop)
    event.listen(Session, "before_commit", drop_before_commit)
    return drop_before_commit, cut


def test_cases_survive_the_database_dropping_its_connections_mid_replay(tmp_path, monkeypatch, caplog):
    config = write_scenario(tmp_path / "scenario", points=POINTS)
    undisturbed = Runtime(load_config(config, tmp_path / "sqlite"))
    replay(undisturbed)
    expected = sorted(c.event_id for c in undisturbed.cases.all_cases())
    assert len(expected) == POINTS

    with postgres_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        runtime = Runtime(load_config(config, tmp_path / "pg"))
        assert runtime.cases.count_cases() == 0  # migrated before any fault
        killer = BackendKiller(url)
        listener, cut = inject(killer, monkeypatch)
        try:
            result = replay(runtime)
        finally:
            event.remove(Session, "before_commit", listener)
            killer.admin.close()
        assert not result.errors
        # A drop was fired inside each case's first transaction. How many drops found a backend to end is not
        # fixed: the points' threads race, so one drop may end another case's connection before that case's own
        # drop runs and finds nothing left (CI once counted 3 of 4). Each cut still shows as a retry.
        assert sorted(cut) == expected
        assert killer.faults >= 1
        assert caplog.text.count("database connection lost") >= POINTS  # each case's transaction cut, retried
        with runtime.sessions() as s:
            ids = sorted(s.scalars(select(Case.event_id)))
        assert ids == expected  # one row per event id: none lost, none doubled
        report = verify_all(runtime.sessions, runtime.store)
        assert report.ok, report.problems
        runtime.sessions.kw["bind"].dispose()
