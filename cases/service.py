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

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cases.audit import GENESIS, Link, link_hash
from cases.claims import ClaimService
from cases.corrections import PLATE, AsCorrected, CorrectionError, as_corrected, check_correction, corrected
from cases.lifecycle import LIFECYCLE, PIPELINE_ACTOR, ForbiddenTransitionError, Lifecycle, Role, State, TransitionError
from cases.models import AccessLog, Case, CaseTransition, User, utcnow
from cases.parties import find_party, vehicle_with_plate
from cases.procedure import Move, Procedure, hashed_details
from cases.records import NewCase
from cases.workdays import WorkCalendar

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
# Opening a case rides out a database restart (a few seconds; a failover takes longer): the waits double from the
# first, 0.25 + 0.5 + ... + 16 s, about 32 s in all, before the error reaches the worker.
RECONNECT_ATTEMPTS = 8
RECONNECT_FIRST_WAIT_S = 0.25


class CaseNotFoundError(LookupError):
    """No case with that id."""


class ConcurrentChangeError(TransitionError):
    """Someone else changed the case between reading and writing it; reload and try again."""


class CaseService:
    """Case persistence and lifecycle over a SQLAlchemy session factory (see the module example).

    `procedure` holds the penalty procedure's conditions and periods; `clock` stamps cases and transitions (tests
    give one that can be moved past a statement window); `claims` holds the reviewers' claims on cases (default:
    claims of the default length, on the same clock).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lifecycle: Lifecycle = LIFECYCLE,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        procedure: Procedure | None = None,
        clock: Callable[[], datetime] = utcnow,
        claims: ClaimService | None = None,
    ):
        self._sessions = sessions
        self.lifecycle = lifecycle
        self.reconnect_attempts = reconnect_attempts
        self.procedure = procedure or Procedure(WorkCalendar())
        self.clock = clock
        self.claims = claims or ClaimService(sessions, clock=clock)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for the reports that read the whole store (`cases.sla`, `cases.publicity`)."""
        return self._sessions

    def open_case(self, record: NewCase) -> tuple[Case, bool]:
        """Create the case for `record` in `detected`, or return the existing one for its event id.

        Returns (case, created). Idempotent even when two workers race: the unique event id decides,
        and the loser reads the winner's case. A connection the database dropped (a restart, a terminated
        backend) is retried on a new one; a commit that reached the database before its connection dropped
        is found by its event id on the retry, so the case is never doubled.
        """
        for wait in _reconnect_waits(self.reconnect_attempts):
            try:
                return self._open_case(record)
            except DBAPIError as e:
                if not e.connection_invalidated or wait is None:
                    raise
                log.warning("case %s: database connection lost (%s); retrying in %.2f s", record.event_id, e.orig, wait)
                time.sleep(wait)
        raise AssertionError("unreachable: the last attempt raises")

    def _open_case(self, record: NewCase) -> tuple[Case, bool]:
        now = self.clock()
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
            evidence_pending=record.evidence_pending,
            created_at=now,
            updated_at=now,
        )
        with self._sessions() as s:
            try:
                case.party_id = find_party(s, case)
                s.add(case)
                s.flush()
                _append(s, case, None, State.DETECTED, PIPELINE_ACTOR, None, now)
                s.commit()
                return case, True
            except IntegrityError:
                s.rollback()
                existing = s.scalar(select(Case).where(Case.event_id == record.event_id))
                if existing is None:
                    raise
                return existing, False

    def transition(
        self, case_id: int, to_state: State | str, actor: str, reason: str | None = None, move: Move | None = None
    ) -> Case:
        """Move the case to `to_state` as the active user `actor`, with the facts of `move` (fine, party kind,
        waiver), recording a chained transition that hashes them.

        Raises `CaseNotFoundError`, or a `TransitionError` (its message zh-CN first, English second):
        `InvalidTransitionError` (no such edge), `ForbiddenTransitionError` (unknown/inactive actor or wrong
        role), `ReasonRequiredError` (e.g. voiding without a reason), `ProcedureError` (the procedure's
        conditions: statement window, legal review of a major fine, first warning, recheck date) or
        `ConcurrentChangeError`.
        """
        try:
            target = State(to_state)
        except ValueError:
            raise TransitionError(f"未知状态 {to_state!r} / unknown state {to_state!r}") from None
        reason = reason.strip() if reason and reason.strip() else None
        with self._sessions() as s:
            case, user = _case_and_actor(s, case_id, actor)
            source = State(case.state)
            self.lifecycle.check(source, target, Role(user.role), reason)
            now = self.clock()
            warned = _earlier_warnings(s, case) if target == State.WARNED else 0
            changes = self.procedure.apply(case, source, target, move or Move(), now, warned)
            # Compare-and-set on the state: a reviewer who read the case before someone else moved it
            # must not append a transition from a state the case has left.
            claimed = s.execute(
                update(Case)
                .where(Case.id == case_id, Case.state == source.value)
                .values(state=target.value, updated_at=now, **changes)
            ).rowcount
            changed = _changed_meanwhile(case_id)
            if claimed != 1:
                s.rollback()
                raise changed
            _append(s, case, source, target, actor, reason, now, hashed_details(changes))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raise changed from None
            return case

    def correct(self, case_id: int, field: str, value: str, actor: str) -> tuple[str | None, str]:
        """Correct the machine's reading of the case's plate text or subtype (`field`) to `value`, as `actor`, a user
        who may decide the case in its evidence review; returns the values before and after (`cases.corrections`: a
        plate is stored normalised). A value equal to the current one records nothing.

        Raises `CaseNotFoundError`, `CorrectionError` (not in the evidence review, or not a plate / the category's
        subtype), `ForbiddenTransitionError` (unknown/inactive actor or a role without the review) or
        `ConcurrentChangeError`; every message zh-CN first, English second.
        """
        with self._sessions() as s:
            case, user = _case_and_actor(s, case_id, actor)
            state = State(case.state)
            if state != State.DETECTED:
                raise CorrectionError(f"案件 {case_id} 已审核，不能再更正 / case {case_id} is past its review")
            if not self.lifecycle.next_states(state, Role(user.role)):
                raise ForbiddenTransitionError(
                    f"角色 {user.role} 不审核证据 / role {user.role} does not review evidence"
                )
            new = check_correction(field, value, case.category)
            chain = select(CaseTransition.details).where(CaseTransition.case_id == case_id).order_by(CaseTransition.seq)
            old = corrected(case, s.scalars(chain))[field]
            if new == old:
                return old, new
            now = self.clock()
            # Compare-and-set, as a transition: a correction never lands on a case someone decided meanwhile.
            moved = s.execute(
                update(Case).where(Case.id == case_id, Case.state == state.value).values(updated_at=now)
            ).rowcount
            changed = _changed_meanwhile(case_id)
            if moved != 1:
                s.rollback()
                raise changed
            _append(s, case, state, state, actor, None, now, {"corrected": field, "old": old, "new": new})
            if field == PLATE:
                _rebind_vehicle(s, case, old, new)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raise changed from None
            return old, new

    def as_corrected(self, cases: Iterable[Case]) -> list[AsCorrected]:
        """`cases` as the review left them (`cases.corrections.as_corrected`): what every reader after it shows."""
        with self._sessions() as s:
            return as_corrected(s, cases)

    def get(self, case_id: int) -> Case:
        with self._sessions() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise CaseNotFoundError(f"no case {case_id}")
            return case

    def list_cases(
        self,
        state: State | str | None = None,
        point_id: str | None = None,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        category: str | None = None,
        *,
        point_ids: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Case]:
        """Cases oldest first (by trigger time): the review queue when `state` is `detected`. `point_ids` keeps the
        cases of those points (a town's), `since` and `until` those triggered in [since, until)."""
        query = self._filtered(select(Case), state, point_id, category, point_ids, since, until)
        query = query.order_by(Case.triggered_at, Case.id).limit(limit).offset(offset)
        with self._sessions() as s:
            return list(s.scalars(query))

    def list_case_ids(
        self,
        state: State | str | None = None,
        point_id: str | None = None,
        limit: int = DEFAULT_PAGE,
        category: str | None = None,
        *,
        point_ids: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[int]:
        """The ids `list_cases` lists, in its order, without loading the cases (the case page's previous and next:
        500 whole cases, evidence maps and all, cost the page and each decision tens of milliseconds)."""
        query = self._filtered(select(Case.id), state, point_id, category, point_ids, since, until)
        with self._sessions() as s:
            return list(s.scalars(query.order_by(Case.triggered_at, Case.id).limit(limit)))

    def all_cases(self, state: State | str | None = None, point_id: str | None = None) -> list[Case]:
        """Every matching case, oldest first, read page by page (exports, `cases list`, evaluation)."""
        out: list[Case] = []
        while page := self.list_cases(state, point_id, limit=DEFAULT_PAGE, offset=len(out)):
            out += page
            if len(page) < DEFAULT_PAGE:
                break
        return out

    def count_cases(
        self,
        state: State | str | None = None,
        point_id: str | None = None,
        category: str | None = None,
        *,
        point_ids: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many cases `list_cases` would list with no limit."""
        query = self._filtered(select(func.count(Case.id)), state, point_id, category, point_ids, since, until)
        with self._sessions() as s:
            return s.scalar(query) or 0

    @staticmethod
    def _filtered(
        query,
        state: State | str | None,
        point_id: str | None,
        category: str | None = None,
        point_ids: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ):
        if state is not None:
            query = query.where(Case.state == State(state).value)
        if point_id is not None:
            query = query.where(Case.point_id == point_id)
        if category is not None:
            query = query.where(Case.category == category)
        if point_ids is not None:
            query = query.where(Case.point_id.in_(point_ids))
        if since is not None:
            query = query.where(Case.triggered_at >= since)
        if until is not None:
            query = query.where(Case.triggered_at < until)
        return query

    def history(self, case_id: int) -> list[CaseTransition]:
        """The case's transitions in order, creation first."""
        with self._sessions() as s:
            query = select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.seq)
            return list(s.scalars(query))

    def settle_evidence(self, still_spooled: Callable[[list[str]], bool]) -> int:
        """Clear "evidence pending" on each case none of whose evidence keys `still_spooled`; returns how many."""
        with self._sessions() as s:
            pending = list(s.scalars(select(Case).where(Case.evidence_pending.is_(True))))
            settled = [c.id for c in pending if not still_spooled([c.manifest_key, *c.evidence.values()])]
            if settled:
                s.execute(update(Case).where(Case.id.in_(settled)).values(evidence_pending=False))
                s.commit()
                log.info("evidence of %d cases now all in the object store: %s", len(settled), settled)
            return len(settled)

    def evidence_keys(self) -> Iterator[str]:
        """Every object key some case refers to (its manifest and evidence files), page by page."""
        last = 0
        while True:
            with self._sessions() as s:
                query = select(Case.id, Case.manifest_key, Case.evidence).where(Case.id > last).order_by(Case.id)
                rows = s.execute(query.limit(DEFAULT_PAGE)).all()
            for case_id, manifest_key, evidence in rows:
                last = case_id
                yield manifest_key
                yield from (evidence or {}).values()
            if len(rows) < DEFAULT_PAGE:
                return

    def log_access(self, username: str, key: str, case_id: int | None = None) -> None:
        """Record that `username` read evidence object `key` (legal requirement 5)."""
        with self._sessions() as s:
            s.add(AccessLog(username=username, key=key, case_id=case_id, at=utcnow()))
            s.commit()


def _rebind_vehicle(s: Session, case: Case, old: str | None, new: str) -> None:
    """Bind a vehicle case to the party whose plate the correction names, unless a reviewer bound another party
    than the one the old plate found (their pick stands)."""

    if case.category != "vehicle":
        return
    if case.party_id is None or (old and case.party_id == vehicle_with_plate(s, old)):
        case.party_id = vehicle_with_plate(s, new)


def _case_and_actor(s: Session, case_id: int, actor: str) -> tuple[Case, User]:
    """The case and the active user `actor`, or the refusal (zh-CN first, English second)."""
    case = s.get(Case, case_id)
    if case is None:
        raise CaseNotFoundError(f"没有案件 {case_id} / no case {case_id}")
    user = s.scalar(select(User).where(User.username == actor, User.active.is_(True)))
    if user is None:
        raise ForbiddenTransitionError(f"{actor!r} 不是在职用户 / {actor!r} is not an active user")
    return case, user


def _reconnect_waits(attempts: int) -> Iterator[float | None]:
    """The wait after each failed attempt; None after the last."""
    for i in range(attempts - 1):
        yield RECONNECT_FIRST_WAIT_S * 2**i
    yield None


def _changed_meanwhile(case_id: int) -> ConcurrentChangeError:
    return ConcurrentChangeError(
        f"案件 {case_id} 已被他人改动，请重新载入 / case {case_id} changed meanwhile; reload it"
    )


def _earlier_warnings(s: Session, case: Case) -> int:
    """How many other cases of `case`'s party were warned (first offences are tracked per party: the party on record,
    else the plate read); 0 when the case names no party, which the evidence review of a warning then has to settle."""
    if case.party_id is not None:
        same_party = Case.party_id == case.party_id
    elif case.party is not None:
        same_party = Case.party == case.party
    else:
        return 0
    query = (
        select(func.count(CaseTransition.id))
        .join(Case, Case.id == CaseTransition.case_id)
        .where(same_party, Case.id != case.id, CaseTransition.to_state == State.WARNED.value)
    )
    return s.scalar(query) or 0


def _append(
    s: Session,
    case: Case,
    source: State | None,
    target: State,
    actor: str,
    reason: str | None,
    at: datetime,
    details: dict | None = None,
) -> None:
    last = s.scalar(
        select(CaseTransition).where(CaseTransition.case_id == case.id).order_by(CaseTransition.seq.desc()).limit(1)
    )
    seq, prev = (0, GENESIS) if last is None else (last.seq + 1, last.hash)
    link = Link(seq, source.value if source else None, target.value, actor, at, reason, details)
    s.add(
        CaseTransition(
            case_id=case.id,
            seq=link.seq,
            from_state=link.from_state,
            to_state=link.to_state,
            actor=link.actor,
            at=link.at,
            reason=link.reason,
            details=link.details,
            prev_hash=prev,
            hash=link_hash(prev, case.event_id, case.manifest_sha256, link),
        )
    )
