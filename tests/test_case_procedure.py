"""The whole case lifecycle through CaseService on SQLite and PostgreSQL: every path a case can take after its
evidence review, each illegal move refused (wrong state, wrong role, the procedure's conditions), and the audit
chain `feixian evidence verify` checks intact after all of it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import delete
from test_cases_verify import T0, file_case

from cases.db import session_factory
from cases.lifecycle import ForbiddenTransitionError, InvalidTransitionError, ReasonRequiredError, State
from cases.models import Base
from cases.procedure import Move, PartyKind, ProcedureError
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from cases.verify import verify_all

S = State
USERS = {"li": "reviewer", "wang": "legal", "zhou": "supervisor", "root": "admin", "yun": "ops"}


class Clock:
    """The service's clock, moved by the test (statement windows and recheck dates are days long)."""

    def __init__(self):
        self.now = T0 + timedelta(minutes=5)

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def sessions(case_engine):
    with case_engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    sessions = session_factory(case_engine)
    for name, role in USERS.items():
        UserService(sessions).add_user(name, "a-long-pass", role)
    return sessions


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(sessions, clock) -> CaseService:
    return CaseService(sessions, clock=clock)


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "evidence")


def new_case(service, store, event_id: str, plate: str) -> int:
    case = file_case(service, store, event_id, plate=plate)
    service.transition(case.id, S.CONFIRMED, "li")
    return case.id


def walk(service, case_id: int, steps) -> None:
    """Make each (state, user, reason, move) step; each must succeed."""
    for target, user, reason, move in steps:
        assert service.transition(case_id, target, user, reason, move).state == target


def refused(error, service, case_id: int, target, user="zhou", reason=None, move=None) -> str:
    """Try a move that must be refused with `error`; the case and its chain are left as they were."""
    before = (service.get(case_id).state, len(service.history(case_id)))
    with pytest.raises(error) as e:
        service.transition(case_id, target, user, reason, move)
    assert (service.get(case_id).state, len(service.history(case_id))) == before
    message = str(e.value)
    assert re.search("[\u4e00-\u9fff]", message.split(" / ")[0]), f"not zh-CN first, English second: {message}"
    return message


# Decided to closed: delivery, publication (双公示), execution, closure.
FINISH = [(S.DELIVERED, "li", None, None), (S.PUBLISHED, "wang", None, None), (S.EXECUTED, "li", None, None)]
FINISH += [(S.CLOSED, "zhou", None, None)]


def notified(service, store, event_id: str, plate: str, fine: int) -> int:
    case_id = new_case(service, store, event_id, plate)
    walk(service, case_id, [(S.FILED, "wang", None, Move(fine_yuan=fine)), (S.NOTIFIED, "wang", None, None)])
    return case_id


def test_every_lifecycle_path_with_its_checks_and_an_intact_chain(service, store, sessions, clock):
    corrected = new_case(service, store, "ev-corrected", "沪A00001")
    walk(service, corrected, [(S.WARNED, "wang", None, None), (S.CLOSED, "li", "corrected on recheck", None)])

    not_corrected = new_case(service, store, "ev-not-corrected", "沪A00002")
    walk(service, not_corrected, [(S.WARNED, "wang", None, None)])
    assert "order to correct" in refused(ProcedureError, service, not_corrected, S.FILED, reason="not corrected")
    clock.now = service.get(not_corrected).recheck_due_at
    walk(service, not_corrected, [(S.FILED, "wang", "not corrected on recheck", None)])

    major = new_case(service, store, "ev-major", "沪A00003")
    walk(service, major, [(S.FILED, "wang", None, Move(fine_yuan=6000, party_kind=PartyKind.PERSON))])
    assert "legal review" in refused(ProcedureError, service, major, S.NOTIFIED)
    walk(service, major, [(S.LEGAL_REVIEW, "wang", None, None), (S.NOTIFIED, "wang", None, None)])
    assert "statement window" in refused(ProcedureError, service, major, S.DECIDED, reason="decision")
    walk(service, major, [(S.STATEMENT, "li", None, None)])
    refused(ProcedureError, service, major, S.DECIDED)  # a statement made does not close the window
    clock.now = service.get(major).statement_due_at
    assert "heavier" in refused(ProcedureError, service, major, S.DECIDED, move=Move(fine_yuan=8000))
    walk(service, major, [(S.DECIDED, "wang", None, Move(fine_yuan=5000)), *FINISH])

    waived = notified(service, store, "ev-waived", "沪A00004", fine=200)
    walk(service, waived, [(S.DECIDED, "wang", "the party waived its statement", Move(waived=True)), *FINISH])

    withdrawn = notified(service, store, "ev-withdrawn", "沪A00005", fine=500)
    clock.now = service.get(withdrawn).statement_due_at
    walk(service, withdrawn, [(S.DECIDED, "wang", "window closed", None), *FINISH[:2]])
    walk(service, withdrawn, [(S.WITHDRAWN, "wang", "decision changed on review", None)])
    walk(service, withdrawn, [(S.DECIDED, "wang", "changed decision", Move(fine_yuan=300)), *FINISH])

    revoked = notified(service, store, "ev-revoked", "沪A00006", fine=500)
    walk(service, revoked, [(S.DECIDED, "wang", "waived", Move(waived=True)), *FINISH[:2]])
    walk(service, revoked, [(S.WITHDRAWN, "wang", "revoked", None), (S.CLOSED, "wang", "decision revoked", None)])

    cases = {c.event_id: c for c in service.all_cases()}
    assert {e: c.state for e, c in cases.items() if c.state != S.CLOSED} == {"ev-not-corrected": S.FILED}
    assert cases["ev-major"].fine_yuan == 5000 and cases["ev-withdrawn"].fine_yuan == 300
    assert cases["ev-waived"].statement_waived and not cases["ev-major"].statement_waived
    visited = {t.to_state for c in cases.values() for t in service.history(c.id)}
    assert visited == {s.value for s in State} - {S.VOIDED}
    # The facts a move set are hashed with it: the chain holds them as the case row does.
    decided = [t for t in service.history(major) if t.to_state == S.DECIDED]
    assert [t.details for t in decided] == [{"fine_yuan": 5000}]
    report = verify_all(sessions, store)
    assert report.ok, report.problems
    assert report.cases_checked == 6


def test_illegal_moves_are_refused_and_leave_no_trace(service, store, clock):
    case = file_case(service, store, "ev-1", plate="沪B00001").id
    refused(InvalidTransitionError, service, case, S.FILED)  # wrong state: evidence not reviewed
    for user in ("wang", "root", "yun"):  # only reviewers and supervisors review evidence
        assert "may not" in refused(ForbiddenTransitionError, service, case, S.CONFIRMED, user=user)
    refused(ForbiddenTransitionError, service, case, S.CONFIRMED, user="nobody")
    refused(ReasonRequiredError, service, case, S.VOIDED, user="li")
    refused(ProcedureError, service, case, S.CONFIRMED, user="li", move=Move(fine_yuan=100))  # a fine, not here
    walk(service, case, [(S.CONFIRMED, "li", None, None)])
    refused(ForbiddenTransitionError, service, case, S.FILED, user="li")  # filing is the legal reviewer's
    refused(ProcedureError, service, case, S.FILED, move=Move(waived=True))  # a waiver goes with the decision
    walk(service, case, [(S.FILED, "wang", None, None)])
    assert "proposed fine" in refused(ProcedureError, service, case, S.NOTIFIED)
    refused(ProcedureError, service, case, S.NOTIFIED, move=Move(fine_yuan=-1))

    # Organisations: major from 50,000 yuan, so 6,000 needs no legal review but 50,000 does.
    walk(service, case, [(S.NOTIFIED, "wang", None, Move(fine_yuan=6000, party_kind=PartyKind.ORGANISATION))])
    org = new_case(service, store, "ev-2", "沪B00002")
    walk(service, org, [(S.FILED, "wang", None, Move(fine_yuan=50_000, party_kind=PartyKind.ORGANISATION))])
    refused(ProcedureError, service, org, S.NOTIFIED)

    # Inside the statement window: no decision without a waiver, whoever asks.
    for user in ("wang", "zhou"):
        refused(ProcedureError, service, case, S.DECIDED, user=user, reason="decision")
    refused(ForbiddenTransitionError, service, case, S.DECIDED, user="li", reason="decision", move=Move(waived=True))

    # A first minor violation only: the party's second case cannot be warned again.
    first = new_case(service, store, "ev-3", "沪B00003")
    walk(service, first, [(S.WARNED, "wang", None, None)])
    again = new_case(service, store, "ev-4", "沪B00003")
    assert "not a first violation" in refused(ProcedureError, service, again, S.WARNED)

    walk(service, first, [(S.CLOSED, "li", "corrected", None)])
    for target in (S.DETECTED, S.FILED, S.WARNED):  # closed is final
        refused(InvalidTransitionError, service, first, target, reason="reopen")
