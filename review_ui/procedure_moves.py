"""The moves the case page's procedure panel offers: after the evidence review, each state the lifecycle lets the
signed-in role move the case to, with the fields that move takes (`cases.procedure`): a reason (required where the
lifecycle needs one), the proposed or decided fine, the party kind a major fine is judged by, the waiver of the
statement window; and the date the move would set (a warning's recheck, a notice's statement window).

The move itself is `CaseService.transition`, the call `feixian cases move` makes: this module only reads the
lifecycle and the procedure to lay out the forms, it checks nothing of its own.

>>> from datetime import UTC, datetime
>>> from cases.procedure import Procedure
>>> from cases.workdays import WorkCalendar
>>> now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
>>> forms = offered(LIFECYCLE, Procedure(WorkCalendar()), State.CONFIRMED, "legal", now)
>>> [(m.target.value, m.reason_required, m.fine) for m in forms]
[('voided', True, False), ('warned', False, False), ('filed', False, True)]
>>> forms[1].sets_until.isoformat()  # the order to correct: seven working days
'2026-03-11T16:00:00+00:00'
>>> offered(LIFECYCLE, Procedure(WorkCalendar()), State.CONFIRMED, "ops", now)
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cases.lifecycle import LIFECYCLE, Lifecycle, ReasonRequiredError, Role, State
from cases.procedure import FINE_TARGETS, PARTY_KIND_TARGETS, WINDOW_SOURCES, Procedure


@dataclass(frozen=True)
class MoveForm:
    """One move the panel offers and what its form asks; `sets_until` is the date the move would set now."""

    target: State
    reason_required: bool
    fine: bool
    party_kind: bool
    waiver: bool
    sets_until: datetime | None = None


def offered(lifecycle: Lifecycle, procedure: Procedure, state: str, role: str, now: datetime) -> list[MoveForm]:
    """The moves `role` may take on a case in `state` at `now`; none out of `detected`, which the evidence review
    decides on its own card (with its claim)."""
    if state == State.DETECTED:
        return []
    source = State(state)
    return [
        MoveForm(
            target,
            _needs_reason(lifecycle, source, target, Role(role)),
            fine=target in FINE_TARGETS,
            party_kind=target in PARTY_KIND_TARGETS,
            waiver=target == State.DECIDED and source in WINDOW_SOURCES,
            sets_until=_sets_until(procedure, target, now),
        )
        for target in lifecycle.next_states(source, Role(role))
    ]


def step_roles(lifecycle: Lifecycle) -> frozenset[str]:
    """The roles the lifecycle gives any case step (ops and admin keep cameras and accounts: none).

    >>> sorted(step_roles(LIFECYCLE))
    ['legal', 'reviewer', 'supervisor']
    """
    return frozenset(role.value for role in Role if any(lifecycle.next_states(state, role) for state in State))


# Those who may take a case step: they see the procedure's pages too.
STEP_ROLES = step_roles(LIFECYCLE)


def _needs_reason(lifecycle: Lifecycle, source: State, target: State, role: Role) -> bool:
    # Asked of the lifecycle's own check, so the form and the move never disagree on it.
    try:
        lifecycle.check(source, target, role, reason=None)
    except ReasonRequiredError:
        return True
    return False


def _sets_until(procedure: Procedure, target: State, now: datetime) -> datetime | None:
    days = {State.WARNED: procedure.recheck_days, State.NOTIFIED: procedure.statement_days}.get(target)
    return None if days is None else procedure.calendar.after_working_days(now, days)
