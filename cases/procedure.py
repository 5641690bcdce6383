"""The penalty procedure's conditions on a move the lifecycle allows (DESIGN.md §3, requirements 8-11).

`cases.lifecycle` says which state may follow which and who may move it; this module says when, and what the
move records: a warning is for a party's first minor violation and gives a recheck date, the case may be filed
only once it passed; a notice needs the proposed fine and opens the statement window; a major fine (5,000 yuan
for a person, 50,000 for an organisation) goes through legal review before the notice; no decision before the
window closes unless the party waived it, and a decision never makes the fine heavier than the notice proposed.

>>> from datetime import UTC, datetime
>>> from cases.models import Case
>>> proc = Procedure(WorkCalendar())
>>> case = Case(party="沪A12345", party_kind=None, fine_yuan=None, statement_waived=False)
>>> now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
>>> proc.apply(case, State.FILED, State.NOTIFIED, Move(fine_yuan=6000), now, 0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cases.procedure.ProcedureError: 罚款 6000 元属重大处罚，告知前须经法制审核 / a fine of 6000 yuan is major: ...
>>> proc.apply(case, State.FILED, State.NOTIFIED, Move(fine_yuan=200), now, 0)["statement_due_at"].isoformat()
'2026-03-05T16:00:00+00:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cases.lifecycle import State, TransitionError
from cases.models import Case
from cases.workdays import WorkCalendar


class PartyKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


# From these fines a decision is major (requirement 10).
MAJOR_FINE_YUAN = {PartyKind.PERSON: 5_000, PartyKind.ORGANISATION: 50_000}
# Where the proposed fine (and the party kind it is judged by) may be given: filing, legal review, the notice;
# the decision may give the final fine, and only there may a waiver of the statement window be recorded.
FINE_TARGETS = frozenset({State.FILED, State.LEGAL_REVIEW, State.NOTIFIED, State.DECIDED})
PARTY_KIND_TARGETS = frozenset({State.FILED, State.LEGAL_REVIEW, State.NOTIFIED})
WINDOW_SOURCES = frozenset({State.NOTIFIED, State.STATEMENT})


class ProcedureError(TransitionError):
    """An edge the lifecycle allows, refused by the procedure's conditions (window, fine, warning, recheck)."""


@dataclass(frozen=True)
class Move:
    """What a person gives with a move besides its target and reason."""

    fine_yuan: int | None = None
    party_kind: PartyKind | None = None
    waived: bool = False


def is_major(fine_yuan: int | None, party_kind: str | None) -> bool:
    # An unknown party kind is judged by the person's threshold, the lower: a doubt means a legal review, never one
    # skipped.
    threshold = MAJOR_FINE_YUAN[PartyKind(party_kind or PartyKind.PERSON)]
    return fine_yuan is not None and fine_yuan >= threshold


@dataclass(frozen=True)
class Procedure:
    """The conditions, with the statement window and the correction period in working days of `calendar`."""

    calendar: WorkCalendar
    statement_days: int = 3
    recheck_days: int = 7

    def apply(
        self, case: Case, source: State, target: State, move: Move, now: datetime, earlier_warnings: int
    ) -> dict[str, Any]:
        """The case columns moving `case` from `source` to `target` at `now` sets (the facts the audit chain hashes
        with the move), or a `ProcedureError` saying why it may not. `earlier_warnings`: how many other cases
        of the same party were warned."""
        _check_given(target, move)
        changes: dict[str, Any] = {}
        if move.party_kind is not None:
            changes["party_kind"] = move.party_kind.value
        if move.fine_yuan is not None:
            changes["fine_yuan"] = move.fine_yuan
        if move.waived:
            changes["statement_waived"] = True
        kind = changes.get("party_kind", case.party_kind)
        if target == State.WARNED:
            if earlier_warnings:
                raise ProcedureError(
                    f"当事人 {case.party} 已受过警告，不属首违，应立案 / "
                    f"party {case.party} was warned before: not a first violation, file the case"
                )
            changes["recheck_due_at"] = self.calendar.after_working_days(now, self.recheck_days)
        elif source == State.WARNED and target == State.FILED and case.recheck_due_at and now < case.recheck_due_at:
            when = self.calendar.local(case.recheck_due_at)
            raise ProcedureError(f"责令改正期限至 {when} 未满，不能立案 / the order to correct runs until {when}")
        elif target == State.NOTIFIED:
            changes["statement_due_at"] = self._notice(source, case.fine_yuan, move.fine_yuan, kind, now)
        elif target == State.DECIDED:
            self._check_decision(case, source, move, now)
        return changes

    def _notice(self, source: State, proposed: int | None, given: int | None, kind: str | None, now: datetime):
        fine = proposed if given is None else given
        if fine is None:
            raise ProcedureError("告知书须载明拟处罚款（--fine） / the notice needs the proposed fine (--fine)")
        if source == State.FILED and is_major(fine, kind):
            raise ProcedureError(
                f"罚款 {fine} 元属重大处罚，告知前须经法制审核 / "
                f"a fine of {fine} yuan is major: it needs a legal review before the notice"
            )
        return self.calendar.after_working_days(now, self.statement_days)

    def _check_decision(self, case: Case, source: State, move: Move, now: datetime) -> None:
        waived = move.waived or case.statement_waived
        if source in WINDOW_SOURCES and not waived and case.statement_due_at and now < case.statement_due_at:
            when = self.calendar.local(case.statement_due_at)
            raise ProcedureError(
                f"陈述申辩期至 {when} 未届满，当事人未放弃，不能作出决定 / "
                f"the statement window runs until {when} and the party did not waive it: no decision yet"
            )
        if move.fine_yuan is not None and case.fine_yuan is not None and move.fine_yuan > case.fine_yuan:
            raise ProcedureError(
                f"决定罚款 {move.fine_yuan} 元重于告知的 {case.fine_yuan} 元；陈述申辩不得加重处罚 / "
                f"a decided fine of {move.fine_yuan} yuan exceeds the {case.fine_yuan} proposed: a statement never "
                "makes the penalty heavier"
            )


def _check_given(target: State, move: Move) -> None:
    if move.fine_yuan is not None and target not in FINE_TARGETS:
        raise ProcedureError(f"转到 {target} 时不能给出罚款 / a fine is not given when moving to {target}")
    if move.fine_yuan is not None and move.fine_yuan < 0:
        raise ProcedureError("罚款不能为负数 / a fine cannot be negative")
    if move.party_kind is not None and target not in PARTY_KIND_TARGETS:
        raise ProcedureError(f"转到 {target} 时不能改当事人类别 / the party kind is not set when moving to {target}")
    if move.waived and target != State.DECIDED:
        raise ProcedureError("放弃陈述申辩只在作出决定时记录 / a waiver is recorded with the decision only")


def hashed_details(changes: dict[str, Any]) -> dict[str, Any] | None:
    """The move's facts as the audit chain hashes them (times as ISO strings); None for a move that set none."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in sorted(changes.items())} or None
