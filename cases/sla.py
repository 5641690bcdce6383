"""The clock (DESIGN.md §3): the bureau's target from discovery to execution, each case's due time, the time
cases spend in each stage and the cases at risk.

A case is due `target_working_days` working days after its discovery (the event's trigger time), plus every hour
it waited on its party: the correction period of a warning, the statement window and the payment after
publication. The software measures the bureau against the stages it controls and never shortens the party's.
A stage's figures count the stays that ended; a stay still running shows in the cases at risk instead.

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
>>> clock = SlaClock(WorkCalendar(), target_working_days=3, at_risk_hours=24)
>>> stays = timeline([("detected", t), ("confirmed", t + timedelta(hours=2))])
>>> clock.due_at(t, stays, t + timedelta(hours=5)).isoformat()  # the end of Thursday in Shanghai
'2026-03-05T16:00:00+00:00'
>>> [(s.state.value, s.hours) for s in stays]
[('detected', 2.0), ('confirmed', None)]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cases.lifecycle import State
from cases.models import Case, CaseTransition
from cases.workdays import WorkCalendar

# The target is met (executed, closed) or no longer applies (voided).
DONE = frozenset({State.EXECUTED, State.CLOSED, State.VOIDED})
# Stages in which the case waits on its party, not on the bureau.
PARTY_TIME = frozenset({State.WARNED, State.NOTIFIED, State.STATEMENT, State.PUBLISHED})
HOUR_S = 3600.0


@dataclass(frozen=True)
class Stay:
    """One stretch of a case in one state; `end` None while it lasts."""

    state: State
    start: datetime
    end: datetime | None

    @property
    def hours(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds() / HOUR_S


def timeline(transitions: Iterable[tuple[str, datetime]]) -> list[Stay]:
    """The stays of a case from its transitions (target state, time) in chain order.

    A link that keeps the state (a reviewer's correction of the plate or subtype, `cases.corrections`) does
    not start a new stay.

    >>> t = datetime(2026, 1, 1)
    >>> [(s.state.value, s.hours) for s in timeline([("detected", t), ("detected", t.replace(hour=1)),
    ...                                              ("confirmed", t.replace(hour=2))])]
    [('detected', 2.0), ('confirmed', None)]
    """
    steps: list[tuple[State, datetime]] = []
    for state, at in transitions:
        if not steps or steps[-1][0] != state:
            steps.append((State(state), at))
    ends = [at for _, at in steps[1:]] + [None]
    return [Stay(state, at, end) for (state, at), end in zip(steps, ends, strict=True)]


def load_timelines(sessions: sessionmaker[Session], states: Collection[State] | None = None) -> dict[int, list[Stay]]:
    """Every case's stays (or only those of the cases now in `states`), from one query over the audit trail."""
    query = select(CaseTransition.case_id, CaseTransition.to_state, CaseTransition.at).order_by(
        CaseTransition.case_id, CaseTransition.seq
    )
    if states is not None:
        query = query.join(Case, Case.id == CaseTransition.case_id).where(Case.state.in_([s.value for s in states]))
    steps: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    with sessions() as s:
        for case_id, state, at in s.execute(query):
            steps[case_id].append((state, at))
    return {case_id: timeline(rows) for case_id, rows in steps.items()}


@dataclass(frozen=True)
class CaseClock:
    due_at: datetime
    done_at: datetime | None  # when it first reached a state in DONE
    overdue: bool  # done after its due time, or still open past it
    hours_left: float | None  # None once done


@dataclass(frozen=True)
class SlaClock:
    calendar: WorkCalendar
    target_working_days: int = 3
    at_risk_hours: float = 24.0

    def due_at(self, discovered_at: datetime, stays: Sequence[Stay], now: datetime) -> datetime:
        waited = sum(((s.end or now) - s.start for s in stays if s.state in PARTY_TIME), timedelta())
        return self.calendar.after_working_days(discovered_at, self.target_working_days) + waited

    def of(self, discovered_at: datetime, stays: Sequence[Stay], now: datetime) -> CaseClock:
        due = self.due_at(discovered_at, stays, now)
        done_at = next((s.start for s in stays if s.state in DONE), None)
        left = None if done_at else (due - now).total_seconds() / HOUR_S
        return CaseClock(due, done_at, (done_at or now) > due, left)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile, interpolated linearly between the closest ranks (numpy's default)."""
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass(frozen=True)
class Durations:
    hours: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        n = len(self.hours)
        return {
            "count": n,
            "mean_hours": round(sum(self.hours) / n, 3) if n else None,
            "p90_hours": round(percentile(self.hours, 90), 3) if n else None,
        }


@dataclass(frozen=True)
class AtRisk:
    case_id: int
    state: str
    party: str | None
    clock: CaseClock

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "state": self.state,
            "party": self.party,
            "due_at": self.clock.due_at.isoformat(),
            "hours_left": round(self.clock.hours_left or 0.0, 3),
            "overdue": self.clock.overdue,
        }


@dataclass(frozen=True)
class SlaReport:
    generated_at: datetime
    target_working_days: int
    at_risk_hours: float
    stages: dict[State, Durations]
    discovery_to_execution: Durations
    executed_on_time: int
    at_risk: list[AtRisk]

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "target_working_days": self.target_working_days,
            "at_risk_hours": self.at_risk_hours,
            "stages": {state.value: d.to_json() for state, d in self.stages.items()},
            "discovery_to_execution": self.discovery_to_execution.to_json() | {"on_time": self.executed_on_time},
            "at_risk": [r.to_json() for r in self.at_risk],
        }


def sla_report(sessions: sessionmaker[Session], clock: SlaClock, now: datetime) -> SlaReport:
    """The figures over every case in the database as they stand at `now`."""
    timelines = load_timelines(sessions)
    with sessions() as s:
        cases = s.execute(select(Case.id, Case.state, Case.party, Case.triggered_at)).all()
    stages: dict[State, list[float]] = {state: [] for state in State}
    to_execution: list[float] = []
    on_time = 0
    at_risk = []
    for case_id, state, party, discovered_at in cases:
        stays = timelines.get(case_id, [])
        for stay in stays:
            if stay.hours is not None:
                stages[stay.state].append(stay.hours)
        case_clock = clock.of(discovered_at, stays, now)
        executed = next((s.start for s in stays if s.state == State.EXECUTED), None)
        if executed is not None:
            to_execution.append((executed - discovered_at).total_seconds() / HOUR_S)
            on_time += executed <= case_clock.due_at
        if case_clock.hours_left is not None and case_clock.hours_left <= clock.at_risk_hours:
            at_risk.append(AtRisk(case_id, state, party, case_clock))
    return SlaReport(
        now,
        clock.target_working_days,
        clock.at_risk_hours,
        {state: Durations(tuple(hours)) for state, hours in stages.items()},
        Durations(tuple(to_execution)),
        on_time,
        sorted(at_risk, key=lambda r: (r.clock.due_at, r.case_id)),
    )
