"""Claims on cases (issue 27 item 5) on SQLite and PostgreSQL: one holder at a time, renewed by its holder, taken
over once expired, released by the holder's decision; and the migration that adds them goes up and down."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import inspect
from test_cases_service import T0, database, record, sessions  # noqa: F401 (module-wide database on each backend)

from cases.claims import ClaimService, ClaimSettings
from cases.db import ALEMBIC_INI, upgrade
from cases.service import CaseService


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def claims(sessions, clock) -> ClaimService:  # noqa: F811
    return ClaimService(sessions, minutes=10, clock=clock)


@pytest.fixture
def case_id(sessions) -> int:  # noqa: F811
    return CaseService(sessions).open_case(record())[0].id


def test_the_first_claim_holds_until_it_expires(claims, clock, case_id) -> None:
    first = claims.claim(case_id, "li")
    assert (first.username, first.claimed_at, first.expires_at) == ("li", T0, T0 + timedelta(minutes=10))
    clock.now += timedelta(minutes=9)
    assert claims.claim(case_id, "wang") == first  # li's claim still holds: wang is told who has it
    assert claims.holders([case_id]) == {case_id: first}
    clock.now += timedelta(minutes=1)  # exactly at its end the claim no longer holds
    assert claims.holders([case_id]) == {}
    assert claims.claim(case_id, "wang").username == "wang"


def test_the_holder_renews_and_only_the_holder_releases(claims, clock, case_id) -> None:
    claims.claim(case_id, "li")
    clock.now += timedelta(minutes=8)
    assert claims.claim(case_id, "li").expires_at == clock.now + timedelta(minutes=10)
    claims.release(case_id, "wang")
    assert claims.holders([case_id])[case_id].username == "li"
    claims.release(case_id, "li")
    assert claims.holders([case_id]) == {}
    assert claims.claim(case_id, "wang").username == "wang"


def test_racing_claims_leave_one_holder(sessions, clock) -> None:  # noqa: F811
    ids = [CaseService(sessions).open_case(record(f"e{i}", i))[0].id for i in range(3)]
    claims = ClaimService(sessions, minutes=10, clock=clock)
    got: dict[str, list[str]] = {"li": [], "wang": []}
    barrier = threading.Barrier(2)

    def grab(name: str) -> None:
        barrier.wait()
        got[name] += [claims.claim(i, name).username for i in ids]

    threads = [threading.Thread(target=grab, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whoever won each case, both reviewers were told the same holder.
    assert got["li"] == got["wang"]
    assert {i: c.username for i, c in claims.holders(ids).items()} == dict(zip(ids, got["li"], strict=True))


def test_claim_length_is_a_bounded_setting() -> None:
    assert ClaimSettings().minutes == 10
    for bad in (0, 241):
        with pytest.raises(ValueError):
            ClaimSettings(minutes=bad)


def test_the_migration_adds_and_removes_the_claims_table(database, sessions, claims, case_id) -> None:  # noqa: F811
    url, engine = database
    claims.claim(case_id, "li")  # a row in the table: the downgrade drops it with the table
    cfg = AlembicConfig(str(ALEMBIC_INI))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    try:
        assert "case_claims" not in inspect(engine).get_table_names()
    finally:
        upgrade(url)
    assert "case_claims" in inspect(engine).get_table_names()
