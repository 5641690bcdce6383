"""Adding and editing one party, as the review UI's forms do: its fields are checked as a CSV row is
(`cases.party_import.check_party`), its key (a merchant's licence number, a vehicle's plate) must be no other party's,
it is written as the import writes (`save_party`: every change recorded with actor and time), and the cases it now
identifies are bound to it. Legal reviewers and supervisors keep the records (`MANAGERS`): the notice goes to the
contact on record, and the legal reviewer answers for the notice; reviewers only pick a case's party among them.

>>> import tempfile, os
>>> from datetime import UTC, datetime
>>> from cases.db import make_engine, session_factory, upgrade
>>> from cases.party_settings import PartySettings
>>> from cases.users import UserService
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> sessions = session_factory(make_engine(url))
>>> _ = UserService(sessions).add_user("wang", "legal-pass-1", "legal")
>>> editor = PartyEditor(PartyService(sessions, PartySettings()), {"JDZ-001": {"front"}})
>>> at = datetime(2026, 3, 2, tzinfo=UTC)
>>> party_id = editor.add("vehicle", {"plate": "沪D62819", "company": "浦东运输"}, "wang", at)
>>> editor.edit(party_id, {"plate": "沪D62819", "company": "浦东渣土运输"}, "wang", at)
>>> [(c.action, c.actor, c.changes.get("company")) for c in editor.changes(party_id)]
[('updated', 'wang', ['浦东运输', '浦东渣土运输']), ('created', 'wang', [None, '浦东运输'])]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.lifecycle import Role
from cases.models import Party, PartyChange, User
from cases.parties import PartyError, PartyService
from cases.party_import import (
    Kind,
    MerchantRow,
    PartyFieldsError,
    VehicleRow,
    check_party,
    party_zones,
    row_kind,
    save_party,
    stored_party,
)

MANAGERS = frozenset({Role.LEGAL, Role.SUPERVISOR})


class PartyEditor:
    """Adds and edits parties for the active users of `MANAGERS` (see the module example); `known_zones`: the
    zones of each configured point, which a merchant's zones must belong to."""

    def __init__(self, parties: PartyService, known_zones: Mapping[str, set[str]]):
        self._parties = parties
        self._known_zones = known_zones

    def add(self, kind: Kind, fields: Mapping[str, Any], username: str, at: datetime) -> int:
        """Store a new party from the form's `fields`; its id. A `PartyFieldsError` names each field refused."""
        row = check_party(kind, fields, self._known_zones)
        with self._parties.sessions() as s:
            _check_manager(s, username)
            _check_key_free(s, row, None)
            party = Party(kind=row_kind(row))
            save_party(s, party, row, username, at)
            self._parties.bind_unbound(s)
            s.commit()
            return party.id

    def edit(self, party_id: int, fields: Mapping[str, Any], username: str, at: datetime) -> None:
        """Change the stored party `party_id` to the form's `fields` (its kind stays)."""
        with self._parties.sessions() as s:
            party = _party(s, party_id)
            row = check_party(party.kind, fields, self._known_zones)
            _check_manager(s, username)
            _check_key_free(s, row, party_id)
            save_party(s, party, row, username, at)
            self._parties.bind_unbound(s)
            s.commit()

    def form_fields(self, party_id: int) -> tuple[Kind, dict[str, str]]:
        """The stored party's kind and its fields as the form shows them (empty strings for nothing)."""
        with self._parties.sessions() as s:
            party = _party(s, party_id)
            kind: Kind = "merchant" if party.kind == "merchant" else "vehicle"
            names = [n for n in (MerchantRow if kind == "merchant" else VehicleRow).model_fields if n != "line"]
            values = {n: getattr(party, n, None) or "" for n in names}
            if kind == "merchant":
                zones = party_zones(s, party_id)
                values["point_id"] = zones[0][0] if zones else ""
                values["zones"] = ";".join(zone for point, zone in zones if point == values["point_id"])
            return kind, values

    def changes(self, party_id: int) -> list[PartyChange]:
        """Every recorded addition and edit of the party, latest first."""
        with self._parties.sessions() as s:
            query = select(PartyChange).where(PartyChange.party_id == party_id)
            return list(s.scalars(query.order_by(PartyChange.at.desc(), PartyChange.id.desc())))


def _party(s: Session, party_id: int) -> Party:
    party = s.get(Party, party_id)
    if party is None:
        raise PartyError(f"没有当事人 {party_id} / no party {party_id}")
    return party


def _check_manager(s: Session, username: str) -> None:
    user = s.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or Role(user.role) not in MANAGERS:
        raise PartyError(f"{username!r} 无权登记当事人 / {username!r} may not keep the parties' records")


def _check_key_free(s: Session, row: MerchantRow | VehicleRow, party_id: int | None) -> None:
    other = stored_party(s, row)
    if other is not None and other.id != party_id:
        field = "licence_no" if isinstance(row, MerchantRow) else "plate"
        raise PartyFieldsError({field: f"已登记为当事人 {other.id} / already on record as party {other.id}"})
