"""The case store's operations: open cases idempotently, move them through the lifecycle with a
hash-chained audit trail, list the review queue and log evidence access.

>>> import tempfile, os
>>> from datetime import datetime, timezone
>>> from cases.db import make_engine, session_factory, upgrade
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> service = CaseService(session_factory(make_engine(url)))
>>> t = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
>>> rec = NewCase("e1", "JDZ-001", "cam-1", "occupation", "stall", "front", t, t, None, None,
...               (31.38, 121.25), 0.8, {"manifest": "evidence/m.json"}, "evidence/m.json", "ab" * 32)
>>> case, created = service.open_case(rec)
>>> created, case.state, service.open_case(rec)[1]
(True, 'detected', False)
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cases.audit import GENESIS, Link, link_hash
from cases.lifecycle import LIFECYCLE, PIPELINE_ACTOR, ForbiddenTransitionError, Lifecycle, Role, State, TransitionError
from cases.models import AccessLog, Case, CaseTransition, User, utcnow
from cases.records import NewCase

DEFAULT_PAGE = 100


class CaseNotFoundError(LookupError):
    """No case with that id."""


class ConcurrentChangeError(TransitionError):
    """Someone else changed the case between reading and writing it; reload and try again."""


class CaseService:
    """Case persistence and lifecycle over a SQLAlchemy session factory (see the module example)."""

    def __init__(self, sessions: sessionmaker[Session], lifecycle: Lifecycle = LIFECYCLE):
        self._sessions = sessions
        self.lifecycle = lifecycle

    def open_case(self, record: NewCase) -> tuple[Case, bool]:
        """Create the case for `record` in `detected`, or return the existing one for its event id.

        Returns (case, created). Idempotent even when two workers race: the unique event id decides,
        and the loser reads the winner's case.
        """
        now = utcnow()
        case = Case(
            event_id=record.event_id,
            point_id=record.point_id,
            device_id=record.device_id,
            category=record.category,
            subtype=record.subtype,
            zone_id=record.zone_id,
            state=State.DETECTED.value,
            started_at=record.started_at,
            triggered_at=record.triggered_at,
            ended_at=record.ended_at,
            detected_at=now,
            party=record.party,
            gps_lat=record.gps[0],
            gps_lon=record.gps[1],
            confidence=record.confidence,
            evidence=dict(record.evidence),
            manifest_key=record.manifest_key,
            manifest_sha256=record.manifest_sha256,
            created_at=now,
            updated_at=now,
        )
        with self._sessions() as s:
            try:
                s.add(case)
                s.flush()
                _append(s, case, None, State.DETECTED, PIPELINE_ACTOR, None)
                s.commit()
                return case, True
            except IntegrityError:
                s.rollback()
                existing = s.scalar(select(Case).where(Case.event_id == record.event_id))
                if existing is None:
                    raise
                return existing, False

    def transition(self, case_id: int, to_state: State | str, actor: str, reason: str | None = None) -> Case:
        """Move the case to `to_state` as the active user `actor`, recording a chained transition.

        Raises `CaseNotFoundError`, or a `TransitionError`: `InvalidTransitionError` (no such edge),
        `ForbiddenTransitionError` (unknown/inactive actor or wrong role), `ReasonRequiredError`
        (e.g. voiding without a reason) or `ConcurrentChangeError`.
        """
        try:
            target = State(to_state)
        except ValueError:
            raise TransitionError(f"unknown state {to_state!r}") from None
        reason = reason.strip() if reason and reason.strip() else None
        with self._sessions() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise CaseNotFoundError(f"no case {case_id}")
            user = s.scalar(select(User).where(User.username == actor, User.active.is_(True)))
            if user is None:
                raise ForbiddenTransitionError(f"{actor!r} is not an active user")
            source = State(case.state)
            self.lifecycle.check(source, target, Role(user.role), reason)
            # Compare-and-set on the state: a reviewer who read the case before someone else moved it
            # must not append a transition from a state the case has left.
            claimed = s.execute(
                update(Case)
                .where(Case.id == case_id, Case.state == source.value)
                .values(state=target.value, updated_at=utcnow())
            ).rowcount
            if claimed != 1:
                s.rollback()
                raise ConcurrentChangeError(f"case {case_id} changed meanwhile; reload it")
            _append(s, case, source, target, actor, reason)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raise ConcurrentChangeError(f"case {case_id} changed meanwhile; reload it") from None
            return case

    def get(self, case_id: int) -> Case:
        with self._sessions() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise CaseNotFoundError(f"no case {case_id}")
            return case

    def list_cases(
        self, state: State | str | None = None, point_id: str | None = None, limit: int = DEFAULT_PAGE, offset: int = 0
    ) -> list[Case]:
        """Cases oldest first (by trigger time): the review queue when `state` is `detected`."""
        query = self._filtered(select(Case), state, point_id)
        query = query.order_by(Case.triggered_at, Case.id).limit(limit).offset(offset)
        with self._sessions() as s:
            return list(s.scalars(query))

    def all_cases(self, state: State | str | None = None, point_id: str | None = None) -> list[Case]:
        """Every matching case, oldest first, read page by page (exports, `cases list`, evaluation)."""
        out: list[Case] = []
        while page := self.list_cases(state, point_id, limit=DEFAULT_PAGE, offset=len(out)):
            out += page
            if len(page) < DEFAULT_PAGE:
                break
        return out

    def count_cases(self, state: State | str | None = None, point_id: str | None = None) -> int:
        with self._sessions() as s:
            return s.scalar(self._filtered(select(func.count(Case.id)), state, point_id)) or 0

    @staticmethod
    def _filtered(query, state: State | str | None, point_id: str | None):
        if state is not None:
            query = query.where(Case.state == State(state).value)
        if point_id is not None:
            query = query.where(Case.point_id == point_id)
        return query

    def history(self, case_id: int) -> list[CaseTransition]:
        """The case's transitions in order, creation first."""
        with self._sessions() as s:
            query = select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.seq)
            return list(s.scalars(query))

    def log_access(self, username: str, key: str, case_id: int | None = None) -> None:
        """Record that `username` read evidence object `key` (legal requirement 5)."""
        with self._sessions() as s:
            s.add(AccessLog(username=username, key=key, case_id=case_id, at=utcnow()))
            s.commit()


def _append(s: Session, case: Case, source: State | None, target: State, actor: str, reason: str | None) -> None:
    last = s.scalar(
        select(CaseTransition).where(CaseTransition.case_id == case.id).order_by(CaseTransition.seq.desc()).limit(1)
    )
    seq, prev = (0, GENESIS) if last is None else (last.seq + 1, last.hash)
    link = Link(seq, source.value if source else None, target.value, actor, utcnow(), reason)
    s.add(
        CaseTransition(
            case_id=case.id,
            seq=link.seq,
            from_state=link.from_state,
            to_state=link.to_state,
            actor=link.actor,
            at=link.at,
            reason=link.reason,
            prev_hash=prev,
            hash=link_hash(prev, case.event_id, case.manifest_sha256, link),
        )
    )
