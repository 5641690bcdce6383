"""The clock's figures (`feixian sla report`) equal those computed directly from a seeded database, on SQLite and
PostgreSQL: stage durations from the audit trail, discovery to execution, and the cases at risk."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from test_case_procedure import Clock, new_case, walk
from test_case_procedure import sessions as sessions  # noqa: F401  (the fixtures, shared)
from test_case_procedure import store as store  # noqa: F401
from test_cases_verify import T0

from cases.lifecycle import State
from cases.models import Case, CaseTransition, UTCDateTime
from cases.procedure import Move
from cases.service import CaseService
from cases.sla import SlaClock, sla_report, timeline
from cases.workdays import WorkCalendar

S = State
CLOCK = SlaClock(WorkCalendar(), target_working_days=3, at_risk_hours=24)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(sessions, clock) -> CaseService:
    return CaseService(sessions, clock=clock)


def seed(service: CaseService, store, clock: Clock, n: int = 14) -> None:
    """Cases stopped at random points of the lifecycle, each step a random number of hours after the last."""
    rng = random.Random(27)
    for i in range(n):
        clock.now = T0 + timedelta(hours=rng.uniform(0.1, 3))
        case_id = new_case(service, store, f"ev-{i}", f"沪C{i:05d}")
        path = [(S.FILED, "wang", None, Move(fine_yuan=200)), (S.NOTIFIED, "wang", None, None)]
        path += [(S.DECIDED, "wang", "window closed", None), (S.DELIVERED, "li", None, None)]
        path += [(S.PUBLISHED, "wang", None, None), (S.EXECUTED, "li", None, None), (S.CLOSED, "zhou", None, None)]
        for step in path[: rng.randint(0, len(path))]:
            clock.advance(hours=rng.uniform(0.5, 30))
            if step[0] == S.DECIDED:
                clock.now = max(clock.now, service.get(case_id).statement_due_at)
            walk(service, case_id, [step])


def hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def test_stage_and_execution_figures_equal_the_databases(service, sessions, store, clock):
    seed(service, store, clock)
    now = clock.now + timedelta(hours=1)
    report = sla_report(sessions, CLOCK, now)

    following = func.lead(CaseTransition.at, type_=UTCDateTime()).over(
        partition_by=CaseTransition.case_id, order_by=CaseTransition.seq
    )
    executed = select(Case.triggered_at, CaseTransition.at).join(Case, Case.id == CaseTransition.case_id)
    with sessions() as s:
        stays = s.execute(select(CaseTransition.to_state, CaseTransition.at, following)).all()
        to_execution = [hours(a, b) for a, b in s.execute(executed.where(CaseTransition.to_state == "executed"))]
    expected = {state: [hours(a, b) for st, a, b in stays if st == state and b is not None] for state in State}
    assert sum(map(len, expected.values())) > 30, "the seed should exercise many stays"
    for state, durations in report.stages.items():
        got = durations.to_json()
        assert sorted(durations.hours) == pytest.approx(sorted(expected[state])), state
        assert got["count"] == len(expected[state])
        if expected[state]:
            assert got["mean_hours"] == pytest.approx(np.mean(expected[state]), abs=1e-3)
            assert got["p90_hours"] == pytest.approx(np.percentile(expected[state], 90), abs=1e-3)
    assert len(to_execution) >= 2
    figures = report.discovery_to_execution.to_json()
    assert figures["count"] == len(to_execution)
    assert figures["mean_hours"] == pytest.approx(np.mean(to_execution), abs=1e-3)
    assert figures["p90_hours"] == pytest.approx(np.percentile(to_execution, 90), abs=1e-3)


def test_cases_at_risk_count_working_days_and_not_the_partys_time(service, sessions, store, clock):
    # Discovered Monday 2 March 2026, 09:30 in Shanghai: due at the end of Thursday, 16:00 UTC.
    open_case = new_case(service, store, "ev-open", "沪D00001")
    waiting = new_case(service, store, "ev-waiting", "沪D00002")
    walk(service, waiting, [(S.FILED, "wang", None, Move(fine_yuan=200)), (S.NOTIFIED, "wang", None, None)])
    notified_at = clock.now
    voided = new_case(service, store, "ev-voided", "沪D00003")
    walk(service, voided, [(S.VOIDED, "wang", "plate unreadable", None)])

    now = datetime(2026, 3, 5, 6, 0, tzinfo=UTC)
    report = sla_report(sessions, CLOCK, now)
    assert [(r.case_id, r.clock.hours_left, r.clock.overdue) for r in report.at_risk] == [(open_case, 10.0, False)]
    # The statement window the party is given moves the target by as long as it lasts.
    due = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)
    stays = timeline((t.to_state, t.at) for t in service.history(waiting))
    assert CLOCK.due_at(service.get(waiting).triggered_at, stays, now) == due + (now - notified_at)

    later = datetime(2026, 3, 6, 6, 0, tzinfo=UTC)
    report = sla_report(sessions, CLOCK, later)
    assert [(r.case_id, r.clock.overdue) for r in report.at_risk] == [(open_case, True)]
    assert report.to_json()["at_risk"][0]["hours_left"] == -14.0
