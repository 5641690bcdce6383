"""The party of a case: found automatically (a vehicle by the plate the evidence read; a merchant when exactly one is
bound to the case's zone), picked or confirmed by a reviewer, and judged by its history (`cases.party_history`).

>>> import tempfile, os
>>> from datetime import UTC, datetime
>>> from cases.db import make_engine, session_factory, upgrade
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> sessions = session_factory(make_engine(url))
>>> with sessions() as s:
...     s.add(Party(kind="vehicle", name="浦东渣土运输公司", plate=normalise_plate("沪D·62819")))
...     s.commit()
>>> case = Case(category="vehicle", party="沪D62819", point_id="P1", zone_id="road")
>>> with sessions() as s:
...     find_party(s, case)
1
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from cases.lifecycle import Role, State
from cases.models import Case, CaseTransition, Party, PartyZone, User
from cases.party_history import PastCase, Risk, first_minor, risk_grade, violations_before
from cases.party_settings import PartySettings
from feixian.domain import Category

log = logging.getLogger(__name__)

_PLATE_NOISE = re.compile(r"[\s·•.\-]")
# A reviewer settles the party before the notice names it; afterwards a change would need a new notice.
PARTY_OPEN_STATES = frozenset({State.DETECTED, State.CONFIRMED, State.WARNED, State.FILED, State.LEGAL_REVIEW})
PICKERS = frozenset({Role.REVIEWER, Role.LEGAL, Role.SUPERVISOR})


class PartyError(ValueError):
    """A party may not be bound to the case; the message is zh-CN first, English second."""


def normalise_plate(text: str) -> str:
    """A plate as stored and compared: upper case, without the separating dot, spaces or dashes.

    >>> normalise_plate(" 沪d·62819 ")
    '沪D62819'
    """
    return _PLATE_NOISE.sub("", text).upper()


def plate_column() -> ColumnElement[str]:
    """`normalise_plate` of `Case.party` in SQL (the reader writes upper case; the dot and spaces go)."""
    return func.upper(func.replace(func.replace(Case.party, "·", ""), " ", ""))


def vehicle_with_plate(s: Session, plate: str) -> int | None:
    """The vehicle party whose plate `plate` is, or None."""
    return s.scalar(select(Party.id).where(Party.kind == "vehicle", Party.plate == normalise_plate(plate)))


def find_party(s: Session, case: Case) -> int | None:
    """The party found automatically for `case` (a vehicle by its plate, the one merchant bound to its zone), or
    None."""
    if case.category == Category.VEHICLE and case.party:
        return vehicle_with_plate(s, case.party)
    bound = s.scalars(
        select(PartyZone.party_id).where(PartyZone.point_id == case.point_id, PartyZone.zone_id == case.zone_id)
    ).all()
    return bound[0] if case.category == Category.OCCUPATION and len(set(bound)) == 1 else None


@dataclass(frozen=True)
class Profile:
    """A party with its cases, its risk grade and whether its next listed violation would be a first minor one."""

    party: Party
    history: list[PastCase]
    risk: Risk
    first_minor_open: bool


class PartyService:
    """Binds parties to cases and reads their history (see the module example)."""

    def __init__(self, sessions: sessionmaker[Session], settings: PartySettings):
        self._sessions = sessions
        self.settings = settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The case store's sessions (`cases.party_edits` writes parties through them)."""
        return self._sessions

    def bind_unbound(self, s: Session) -> int:
        """Bind every case with no party yet to the one found for it (after an import); returns how many."""
        same_plate = select(Party.id).where(Party.kind == "vehicle", Party.plate == plate_column()).scalar_subquery()
        vehicles = (
            update(Case)
            .where(Case.party_id.is_(None), Case.category == Category.VEHICLE.value)
            .values(party_id=same_plate)
            .execution_options(synchronize_session=False)
        )
        bound = s.execute(vehicles.where(exists().where(Party.plate == plate_column()))).rowcount
        for case in s.scalars(select(Case).where(Case.party_id.is_(None), Case.category == Category.OCCUPATION)):
            case.party_id = find_party(s, case)
            bound += case.party_id is not None
        return bound

    def candidates(self, case_id: int) -> list[Party]:
        """The parties a reviewer picks from: the vehicle with the case's plate, the merchants bound to its zone."""
        with self._sessions() as s:
            case = _case(s, case_id)
            query = select(Party).join(PartyZone, PartyZone.party_id == Party.id)
            query = query.where(PartyZone.point_id == case.point_id, PartyZone.zone_id == case.zone_id)
            found = list(s.scalars(query.distinct()))
            if case.party:
                found += s.scalars(select(Party).where(Party.plate == normalise_plate(case.party)))
            return found

    def assign(self, case_id: int, party_id: int, username: str) -> Case:
        """Bind (or confirm) `party_id` as the party of the case, as the active user `username`."""
        with self._sessions() as s:
            case = _case(s, case_id)
            user = s.scalar(select(User).where(User.username == username, User.active.is_(True)))
            if user is None or Role(user.role) not in PICKERS:
                raise PartyError(f"{username!r} 无权确定当事人 / {username!r} may not bind a case's party")
            if State(case.state) not in PARTY_OPEN_STATES:
                raise PartyError(
                    f"案件已在 {case.state}，告知后不能更换当事人 / the case is {case.state}: its party is settled"
                )
            if s.get(Party, party_id) is None:
                raise PartyError(f"没有当事人 {party_id} / no party {party_id}")
            case.party_id, case.party_confirmed_by = party_id, username
            s.commit()
            log.info("case %s: party %s bound by %s", case_id, party_id, username)
            return case

    def history(self, s: Session, party_id: int) -> list[PastCase]:
        """Every case of the party, oldest first."""
        decided = exists().where(CaseTransition.case_id == Case.id, CaseTransition.to_state == State.DECIDED.value)
        query = select(Case.id, Case.subtype, Case.state, Case.triggered_at, decided).where(Case.party_id == party_id)
        return [PastCase(*row) for row in s.execute(query.order_by(Case.triggered_at, Case.id))]

    def profiles(self, now: datetime, party_id: int | None = None) -> list[Profile]:
        """Every party (or the one `party_id`) with its history and grade, as the parties pages show them."""
        with self._sessions() as s:
            query = select(Party).order_by(Party.kind, Party.name, Party.id)
            parties = s.scalars(query if party_id is None else query.where(Party.id == party_id)).all()
            out = []
            for party in parties:
                history = self.history(s, party.id)
                clean = not violations_before(history, now, self.settings)
                out.append(Profile(party, history, risk_grade(history, now, self.settings), clean))
            return out

    def describe(self, cases: Iterable[Case], now: datetime) -> dict[int, dict[str, Any] | None]:
        """Each case's party as `feixian cases list --json` shows it (`party_record`), by case id."""
        out: dict[int, dict[str, Any] | None] = {}
        with self._sessions() as s:
            histories: dict[int, list[PastCase]] = {}
            for case in cases:
                party = s.get(Party, case.party_id) if case.party_id else None
                if party is None:
                    out[case.id] = None
                    continue
                history = histories.setdefault(party.id, self.history(s, party.id))
                others = [c for c in history if c.case_id != case.id]
                minor = first_minor(case.subtype, case.triggered_at, others, self.settings)
                out[case.id] = party_json(party) | {
                    "confirmed_by": case.party_confirmed_by,
                    "first_minor": minor.eligible,
                    "first_minor_reason": minor.reason,
                    "risk": risk_grade(history, now, self.settings).to_json(),
                }
        return out


def party_json(party: Party) -> dict[str, Any]:
    """A party's own fields (its contact included: for the bureau's systems, never for publication)."""
    fields = ("id", "kind", "name", "shop", "licence_no", "plate", "company", "contact")
    return {f: getattr(party, f) for f in fields}


def _case(s: Session, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None:
        raise PartyError(f"没有案件 {case_id} / no case {case_id}")
    return case
