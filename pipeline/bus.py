"""The frame bus between ingest and the pipeline workers: one ordered stream per point.

`MemoryBus` is the embedded default (in-process, bounded per point). A Redis Streams backend carries
the same `Frame`s for scale-out; both honour the same contract: frames of one point come out in the
order they went in, a full point pushes back (`BusFull`) instead of growing without bound, and closing
a point lets its consumer drain what is queued and then see the end.

>>> from datetime import datetime, timezone
>>> bus = MemoryBus(max_pending=2)
>>> bus.publish(Frame("P1", 0, datetime(2026, 1, 1, tzinfo=timezone.utc), b"\\xff\\xd8"))
>>> bus.close_point("P1")
>>> [f.seq for f in bus.iter_point("P1")]
[0]
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Protocol

from pipeline.frames import Frame


class BusFull(RuntimeError):
    """The point's queue is full: the publisher should retry later (HTTP 503 + Retry-After)."""


class BusClosed(RuntimeError):
    """Publishing to a point that was closed."""


class FrameBus(Protocol):
    def publish(self, frame: Frame, block: bool = False, timeout: float | None = None) -> None: ...

    def consume(self, point_id: str, timeout: float | None = None) -> Frame | None:
        """The next frame of the point; None on timeout or once the point is closed and drained."""
        ...

    def close_point(self, point_id: str) -> None: ...

    def is_drained(self, point_id: str) -> bool: ...

    def pending(self, point_id: str) -> int:
        """Frames of the point queued and not yet consumed (readiness reports it)."""
        ...


class _PointQueue:
    def __init__(self, max_pending: int):
        self.frames: deque[Frame] = deque()
        self.max_pending = max_pending
        self.closed = False
        self.cond = threading.Condition()


class MemoryBus:
    """In-process bus: a bounded FIFO per point, safe for many publishers and one consumer per point."""

    def __init__(self, max_pending: int = 256):
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._max_pending = max_pending
        self._queues: dict[str, _PointQueue] = {}
        self._lock = threading.Lock()

    def _queue(self, point_id: str) -> _PointQueue:
        with self._lock:
            q = self._queues.get(point_id)
            if q is None:
                q = self._queues[point_id] = _PointQueue(self._max_pending)
            return q

    def publish(self, frame: Frame, block: bool = False, timeout: float | None = None) -> None:
        """Queue a frame. A full queue raises `BusFull` at once, or after `timeout` when `block` is set
        (replays block so nothing is dropped; live pushes answer 503 instead of buffering forever)."""
        q = self._queue(frame.point_id)
        with q.cond:
            if q.closed:
                raise BusClosed(f"point {frame.point_id} is closed")
            if len(q.frames) >= q.max_pending:
                if not block or not q.cond.wait_for(lambda: len(q.frames) < q.max_pending or q.closed, timeout=timeout):
                    raise BusFull(f"point {frame.point_id}: {len(q.frames)} frames pending")
                if q.closed:
                    raise BusClosed(f"point {frame.point_id} is closed")
            q.frames.append(frame)
            q.cond.notify_all()

    def consume(self, point_id: str, timeout: float | None = None) -> Frame | None:
        q = self._queue(point_id)
        with q.cond:
            if not q.cond.wait_for(lambda: q.frames or q.closed, timeout=timeout):
                return None
            if not q.frames:
                return None
            frame = q.frames.popleft()
            q.cond.notify_all()
            return frame

    def close_point(self, point_id: str) -> None:
        q = self._queue(point_id)
        with q.cond:
            q.closed = True
            q.cond.notify_all()

    def is_drained(self, point_id: str) -> bool:
        q = self._queue(point_id)
        with q.cond:
            return q.closed and not q.frames

    def pending(self, point_id: str) -> int:
        q = self._queue(point_id)
        with q.cond:
            return len(q.frames)

    def iter_point(self, point_id: str) -> Iterator[Frame]:
        """Frames of a point until it is closed and drained."""
        while True:
            frame = self.consume(point_id, timeout=0.5)
            if frame is not None:
                yield frame
            elif self.is_drained(point_id):
                return
