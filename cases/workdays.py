"""Working days: the deadlines of the penalty procedure and the bureau's target are counted in them.

行政处罚法 art. 85 counts its short periods in working days without public holidays, and a period does not
count the day it starts on, so a deadline is the end (local midnight) of its last working day.

>>> from datetime import UTC, datetime
>>> cal = WorkCalendar()
>>> cal.after_working_days(datetime(2026, 3, 6, 2, 0, tzinfo=UTC), 3).isoformat()  # a Friday in Shanghai
'2026-03-11T16:00:00+00:00'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BUREAU_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class WorkCalendar:
    """Monday to Friday in `tz`, less `holidays`, plus `extra_workdays` (the weekends worked to bridge a holiday)."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(BUREAU_TZ))
    holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    @classmethod
    def of(cls, tz: str, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(ZoneInfo(tz), frozenset(holidays), frozenset(extra_workdays))

    def is_working(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day in self.extra_workdays or day.weekday() < 5

    def after_working_days(self, start: datetime, days: int) -> datetime:
        """The end of the `days`-th working day after the (local) day of `start`, in UTC."""
        day = start.astimezone(self.tz).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            counted += self.is_working(day)
        return datetime.combine(day + timedelta(days=1), time(), self.tz).astimezone(UTC)

    def local(self, at: datetime) -> str:
        """`at` as the bureau's clock shows it, for messages."""
        return at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")
