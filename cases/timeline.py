"""A case's times must tell one consistent story: a reviewer judges the record "accurate" from them.

Started ≤ triggered ≤ ended (when it has ended), and the key frames at distinct times in the order they
are listed. The case store refuses a record that breaks this (`cases.records.NewCase`), the evidence
builder refuses to store such a bundle, and `cases.verify` re-checks stored cases.

>>> from datetime import datetime, timedelta, timezone
>>> t = datetime(2026, 3, 4, 10, 2, 30, tzinfo=timezone.utc)
>>> time_problems(t, t + timedelta(seconds=20), t + timedelta(seconds=15))
['ended_at 2026-03-04T10:02:45+00:00 is before triggered_at 2026-03-04T10:02:50+00:00']
>>> time_problems(t, t, None, [t, t])
['key frame 2 is not after key frame 1 (both 2026-03-04T10:02:30+00:00)']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


class InconsistentTimesError(ValueError):
    """A case's times contradict each other."""


def time_problems(
    started_at: datetime,
    triggered_at: datetime,
    ended_at: datetime | None,
    keyframe_times: Sequence[datetime] = (),
) -> list[str]:
    """What is inconsistent in these times, one sentence each; empty when they agree."""
    problems = []
    if triggered_at < started_at:
        problems.append(f"triggered_at {triggered_at.isoformat()} is before started_at {started_at.isoformat()}")
    if ended_at is not None and ended_at < triggered_at:
        problems.append(f"ended_at {ended_at.isoformat()} is before triggered_at {triggered_at.isoformat()}")
    for k in range(1, len(keyframe_times)):
        before, after = keyframe_times[k - 1], keyframe_times[k]
        if after <= before:
            both = f"both {after.isoformat()}" if after == before else f"{after.isoformat()} ≤ {before.isoformat()}"
            problems.append(f"key frame {k + 1} is not after key frame {k} ({both})")
    return problems


def check_times(
    started_at: datetime,
    triggered_at: datetime,
    ended_at: datetime | None,
    keyframe_times: Sequence[datetime] = (),
    what: str = "case",
) -> None:
    """Raise `InconsistentTimesError` naming every problem `time_problems` finds."""
    problems = time_problems(started_at, triggered_at, ended_at, keyframe_times)
    if problems:
        raise InconsistentTimesError(f"{what}: inconsistent times: {'; '.join(problems)}")
