"""Throughput per person (issue 27 item 4, the supervisor page): how many decisions each person made on each of the
last days, read from the audit trail.

A decision is a transition a person made: the pipeline's own entries (a case opened in `detected`) are not one.
Days are the bureau's local days, the last of them the day of `now`.

>>> import tempfile, os
>>> from datetime import UTC, datetime
>>> from zoneinfo import ZoneInfo
>>> from cases.db import make_engine, session_factory, upgrade
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> sessions = session_factory(make_engine(url))
>>> t = decisions_per_day(sessions, ZoneInfo("Asia/Shanghai"), datetime(2026, 3, 2, tzinfo=UTC), days=3)
>>> [d.isoformat() for d in t.days], t.per_person
(['2026-02-28', '2026-03-01', '2026-03-02'], {})
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cases.lifecycle import PIPELINE_ACTOR
from cases.models import CaseTransition


@dataclass(frozen=True)
class Throughput:
    """Decisions per person (username) on each of `days` (oldest first)."""

    days: tuple[date, ...]
    per_person: dict[str, tuple[int, ...]]

    def total(self, username: str) -> int:
        return sum(self.per_person[username])

    def mean_per_day(self, username: str) -> float:
        return self.total(username) / len(self.days)

    def daily_totals(self) -> tuple[int, ...]:
        """Everyone's decisions on each day."""
        return tuple(sum(day) for day in zip(*self.per_person.values(), strict=True)) or (0,) * len(self.days)


def decisions_per_day(sessions: sessionmaker[Session], tz: ZoneInfo, now: datetime, days: int) -> Throughput:
    """The decisions of the `days` local days that end with the day of `now`, per person, by username."""
    if days < 1:
        raise ValueError("days must be at least 1")
    last = now.astimezone(tz).date()
    span = tuple(last - timedelta(days=n) for n in range(days - 1, -1, -1))
    start = datetime.combine(span[0], time(), tz)
    query = select(CaseTransition.actor, CaseTransition.at).where(
        CaseTransition.actor != PIPELINE_ACTOR,
        CaseTransition.at >= start,
        CaseTransition.at <= now,
        CaseTransition.from_state.is_distinct_from(CaseTransition.to_state),  # a correction decides nothing
    )
    with sessions() as s:
        counted = Counter((actor, at.astimezone(tz).date()) for actor, at in s.execute(query))
    people = sorted({actor for actor, _ in counted})
    return Throughput(span, {p: tuple(counted[(p, day)] for day in span) for p in people})
