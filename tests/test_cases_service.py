"""CaseService and the schema on both SQLite and PostgreSQL (a throw-away database per run)."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import postgres_database
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError

from cases import NewCase
from cases.audit import GENESIS, Link, StoredLink, chain_problems
from cases.db import ALEMBIC_INI, make_engine, session_factory, upgrade
from cases.lifecycle import (
    ForbiddenTransitionError,
    InvalidTransitionError,
    ReasonRequiredError,
    State,
    TransitionError,
)
from cases.models import AccessLog, Base, Case, CaseTransition, User
from cases.service import DEFAULT_PAGE, CaseNotFoundError, CaseService
from cases.users import UserService

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=SHANGHAI)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path_factory):
    """(url, engine) of a migrated, module-wide database on each backend."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'feixian.db'}"
        else:
            url = stack.enter_context(postgres_database())
        upgrade(url)
        engine = make_engine(url)
        yield url, engine
        engine.dispose()


@pytest.fixture
def sessions(database):
    _, engine = database
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    return session_factory(engine)


@pytest.fixture
def service(sessions) -> CaseService:
    return CaseService(sessions)


@pytest.fixture
def reviewer(sessions) -> str:
    UserService(sessions).add_user("li", "review-pass", "reviewer", "李审核")
    return "li"


def record(event_id: str = "e1", minutes: int = 0, point: str = "JDZ-001") -> NewCase:
    t = T0 + timedelta(minutes=minutes)
    return NewCase(
        event_id=event_id,
        point_id=point,
        device_id="cam-7",
        category="occupation",
        subtype="stall",
        zone_id="front",
        started_at=t - timedelta(minutes=4),
        triggered_at=t,
        ended_at=None,
        party=None,
        gps=(31.3838, 121.2503),
        confidence=0.81,
        evidence={"clip": f"evidence/{event_id}/clip.mp4", "manifest": f"evidence/{event_id}/manifest.json"},
        manifest_key=f"evidence/{event_id}/manifest.json",
        manifest_sha256="ab" * 32,
    )


def stored_chain(service: CaseService, case: Case) -> list[str]:
    links = [
        StoredLink(Link(t.seq, t.from_state, t.to_state, t.actor, t.at, t.reason), t.prev_hash, t.hash)
        for t in service.history(case.id)
    ]
    return chain_problems(case.event_id, case.manifest_sha256, case.state, links)


def test_migrations_create_exactly_the_models_schema(database):
    url, engine = database
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        head = ScriptDirectory.from_config(AlembicConfig(str(ALEMBIC_INI))).get_current_head()
        assert conn.scalar(text("select version_num from alembic_version")) == head
    upgrade(url)  # a second upgrade is a no-op


def test_times_round_trip_as_aware_utc(service):
    case, _ = service.open_case(record())
    again = service.get(case.id)
    assert again.triggered_at == T0 and again.triggered_at.tzinfo == UTC
    assert again.started_at == T0 - timedelta(minutes=4)
    assert again.ended_at is None
    assert again.detected_at.tzinfo == UTC
    assert abs(again.detected_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_naive_datetimes_are_refused(sessions):
    with sessions() as s:
        s.add(User(username="x", display_name="x", role="ops", password_hash="h", created_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="timezone-aware"):
            s.flush()


def test_open_case_records_everything_and_the_creation(service):
    case, created = service.open_case(record())
    assert created and case.state == "detected"
    got = service.get(case.id)
    assert (got.event_id, got.point_id, got.device_id, got.category, got.subtype, got.zone_id) == (
        "e1",
        "JDZ-001",
        "cam-7",
        "occupation",
        "stall",
        "front",
    )
    assert (got.gps_lat, got.gps_lon, got.confidence, got.party) == (31.3838, 121.2503, 0.81, None)
    assert got.evidence == {"clip": "evidence/e1/clip.mp4", "manifest": "evidence/e1/manifest.json"}
    assert (got.manifest_key, got.manifest_sha256) == ("evidence/e1/manifest.json", "ab" * 32)
    [created_row] = service.history(case.id)
    assert (created_row.seq, created_row.from_state, created_row.to_state, created_row.actor) == (
        0,
        None,
        "detected",
        "pipeline",
    )
    assert created_row.prev_hash == GENESIS
    assert stored_chain(service, got) == []


def test_open_case_is_idempotent_on_event_id(service):
    first, created = service.open_case(record())
    second, created_again = service.open_case(record())
    assert created and not created_again
    assert second.id == first.id
    assert service.count_cases() == 1
    assert len(service.history(first.id)) == 1


def test_racing_open_case_creates_one_case(service):
    barrier = threading.Barrier(6)
    results: list[tuple[int, bool]] = []

    def open_it() -> None:
        barrier.wait()
        case, created = service.open_case(record("race"))
        results.append((case.id, created))

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    assert sum(created for _, created in results) == 1
    assert len({case_id for case_id, _ in results}) == 1
    assert service.count_cases() == 1
    assert len(service.history(results[0][0])) == 1


def test_review_confirms_with_a_chained_transition(service, reviewer):
    case, _ = service.open_case(record())
    confirmed = service.transition(case.id, State.CONFIRMED, reviewer)
    assert confirmed.state == "confirmed"
    assert service.get(case.id).state == "confirmed"
    created_row, review = service.history(case.id)
    assert (review.seq, review.from_state, review.to_state, review.actor, review.reason) == (
        1,
        "detected",
        "confirmed",
        "li",
        None,
    )
    assert review.prev_hash == created_row.hash
    assert review.at.tzinfo == UTC
    assert stored_chain(service, confirmed) == []


def test_voiding_needs_a_reason_and_records_it(service, reviewer):
    case, _ = service.open_case(record())
    with pytest.raises(ReasonRequiredError):
        service.transition(case.id, "voided", reviewer, reason="  ")
    voided = service.transition(case.id, "voided", reviewer, reason="  plate unreadable ")
    assert voided.state == "voided"
    assert service.history(case.id)[-1].reason == "plate unreadable"
    assert stored_chain(service, voided) == []


def test_refused_transitions_change_nothing(service, reviewer, sessions):
    users = UserService(sessions)
    users.add_user("ops1", "ops-password", "ops")
    users.add_user("gone", "gone-password", "supervisor")
    with sessions() as s:
        s.execute(update(User).where(User.username == "gone").values(active=False))
        s.commit()
    case, _ = service.open_case(record())
    with pytest.raises(InvalidTransitionError, match="cannot go from detected to filed"):
        service.transition(case.id, "filed", reviewer)
    with pytest.raises(ForbiddenTransitionError, match="role ops may not"):
        service.transition(case.id, "confirmed", "ops1")
    with pytest.raises(ForbiddenTransitionError, match="not an active user"):
        service.transition(case.id, "confirmed", "gone")
    with pytest.raises(ForbiddenTransitionError, match="not an active user"):
        service.transition(case.id, "confirmed", "pipeline")
    with pytest.raises(TransitionError, match="unknown state 'approved'"):
        service.transition(case.id, "approved", reviewer)
    with pytest.raises(CaseNotFoundError):
        service.transition(case.id + 1000, "confirmed", reviewer)
    assert service.get(case.id).state == "detected"
    assert len(service.history(case.id)) == 1


def test_racing_reviews_of_one_case_keep_a_single_chain(service, sessions):
    users = UserService(sessions)
    names = [f"r{i}" for i in range(4)]
    for name in names:
        users.add_user(name, "review-pass", "reviewer")
    case, _ = service.open_case(record())
    barrier = threading.Barrier(len(names))
    outcomes: list[str] = []

    def review(name: str, target: str) -> None:
        barrier.wait()
        try:
            service.transition(case.id, target, name, reason="race")
            outcomes.append("ok")
        except TransitionError as e:
            outcomes.append(type(e).__name__)

    threads = [
        threading.Thread(target=review, args=(n, "confirmed" if i % 2 else "voided")) for i, n in enumerate(names)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("ok") == 1
    # A loser that reads the case after the winner committed sees the new state: from "confirmed",
    # voiding is a legal reviewer's step, so a reviewer is refused by role rather than by edge.
    assert set(outcomes) - {"ok"} <= {"ConcurrentChangeError", "InvalidTransitionError", "ForbiddenTransitionError"}
    history = service.history(case.id)
    final = service.get(case.id)
    assert len(history) == 2 and history[-1].to_state == final.state
    assert stored_chain(service, final) == []


def test_the_chain_cannot_fork(service, reviewer, sessions):
    case, _ = service.open_case(record())
    with sessions() as s:
        row = s.scalars(select(CaseTransition).where(CaseTransition.case_id == case.id)).one()
        s.add(
            CaseTransition(
                case_id=case.id,
                seq=0,
                from_state=None,
                to_state="detected",
                actor="pipeline",
                at=row.at,
                reason=None,
                prev_hash=GENESIS,
                hash="f" * 64,
            )
        )
        with pytest.raises(IntegrityError):
            s.commit()


def test_queue_lists_oldest_first_with_filters(service, reviewer):
    late, _ = service.open_case(record("late", minutes=30))
    early, _ = service.open_case(record("early", minutes=-30, point="JDZ-002"))
    mid, _ = service.open_case(record("mid"))
    service.transition(mid.id, "confirmed", reviewer)
    assert [c.event_id for c in service.list_cases()] == ["early", "mid", "late"]
    assert [c.event_id for c in service.list_cases(state=State.DETECTED)] == ["early", "late"]
    assert [c.event_id for c in service.list_cases(state="detected", limit=1, offset=1)] == ["late"]
    assert [c.event_id for c in service.list_cases(point_id="JDZ-002")] == ["early"]
    assert service.count_cases() == 3
    assert service.count_cases(state="detected") == 2
    assert service.count_cases(state="confirmed", point_id="JDZ-002") == 0
    with pytest.raises(ValueError):
        service.list_cases(state="approved")


def test_get_unknown_case_raises(service):
    with pytest.raises(CaseNotFoundError, match="no case 4242"):
        service.get(4242)


def test_evidence_access_is_logged(service, sessions):
    case, _ = service.open_case(record())
    service.log_access("li", "evidence/e1/clip.mp4", case_id=case.id)
    service.log_access("wang", "evidence/e1/manifest.json")
    with sessions() as s:
        rows = s.scalars(select(AccessLog).order_by(AccessLog.id)).all()
    assert [(r.username, r.key, r.case_id) for r in rows] == [
        ("li", "evidence/e1/clip.mp4", case.id),
        ("wang", "evidence/e1/manifest.json", None),
    ]
    assert all(r.at.tzinfo == UTC for r in rows)


def test_all_cases_reads_past_one_page(service):
    for i in range(DEFAULT_PAGE + 7):
        service.open_case(record(f"page-{i}", minutes=-i))
    assert len(service.list_cases()) == DEFAULT_PAGE
    everything = service.all_cases()
    assert len(everything) == DEFAULT_PAGE + 7 == service.count_cases()
    assert [c.triggered_at for c in everything] == sorted(c.triggered_at for c in everything)
