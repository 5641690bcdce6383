"""What a pushed frame must be before it is queued: a plausible capture time and a JPEG of bounded size.

Each refusal is a `FrameRejected` with a short reason (for counters and logs), the HTTP status the push
API answers and a message the gateway's operator can act on. Nothing refused reaches the frame bus, so
one bad frame cannot disturb the point's worker.

>>> limits = FrameLimits(clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
>>> check_capture_time(datetime(2099, 1, 1, tzinfo=UTC), limits, announced_on=None)
Traceback (most recent call last):
...
ingest.frame_checks.FrameRejected: capture time 2099-01-01T00:00:00+00:00 is 26604 days ahead of the server \
clock (at most 300 s allowed): check the camera's clock
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from fastapi import status

from pipeline.frames import FrameDecodeError, FrameLimits, ImageTooLargeError, decode_jpeg


class FrameRejected(ValueError):
    """A pushed frame refused; `reason` names the check, `status` is the HTTP answer."""

    def __init__(
        self, reason: str, message: str, status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT, headers=None
    ):
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code
        self.headers = headers


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.0f} s" if seconds < 86_400 else f"{seconds // 86_400:.0f} days"


def check_capture_time(captured_at: datetime, limits: FrameLimits, announced_on: date | None) -> None:
    """Refuse a time ahead of the server clock (beyond the allowed skew) or before the point's announcement
    (UTC date, as `Point.may_raise_cases` judges it). The order against the point's last accepted frame is
    checked where frames are numbered (`PointSequencer`), under the point's lock."""
    ahead = limits.ahead_of_clock(captured_at)
    if ahead is not None:
        assert limits.max_ahead is not None
        raise FrameRejected(
            "future",
            f"capture time {captured_at.isoformat()} is {_span(ahead + limits.max_ahead)} ahead of the server clock "
            f"(at most {_span(limits.max_ahead)} allowed): check the camera's clock",
        )
    if announced_on is not None and captured_at.astimezone(UTC).date() < announced_on:
        raise FrameRejected(
            "before_announcement",
            f"capture time {captured_at.isoformat()} is before the point's announcement on {announced_on.isoformat()}",
        )


def check_image(jpeg: bytes, limits: FrameLimits) -> None:
    """Refuse what is not a decodable JPEG, judging its declared size from the header before decoding."""
    try:
        decode_jpeg(jpeg, limits.max_pixels)
    except ImageTooLargeError as e:
        raise FrameRejected("too_many_pixels", str(e), status.HTTP_413_CONTENT_TOO_LARGE) from e
    except FrameDecodeError as e:
        raise FrameRejected("not_jpeg", str(e)) from e


class RejectionCounts:
    """Refused frames per point and reason, safe to count from many request threads."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, point_id: str, reason: str) -> int:
        """Count one refusal; returns how many of this point and reason there have been."""
        with self._lock:
            self._counts[point_id, reason] += 1
            return self._counts[point_id, reason]

    def for_point(self, point_id: str) -> dict[str, int]:
        with self._lock:
            return {reason: n for (pid, reason), n in sorted(self._counts.items()) if pid == point_id}
