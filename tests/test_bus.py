import threading
from datetime import UTC, datetime

import pytest

from pipeline.bus import BusClosed, BusFull, MemoryBus
from pipeline.frames import Frame

T = datetime(2026, 1, 1, tzinfo=UTC)


def frame(point: str, seq: int) -> Frame:
    return Frame(point, seq, T, b"\xff\xd8")


def test_order_per_point_and_isolation():
    bus = MemoryBus(max_pending=10)
    for i in range(3):
        bus.publish(frame("A", i))
        bus.publish(frame("B", 10 + i))
    assert [bus.consume("A").seq for _ in range(3)] == [0, 1, 2]
    assert bus.pending("B") == 3


def test_full_point_pushes_back_without_losing_queued_frames():
    bus = MemoryBus(max_pending=2)
    bus.publish(frame("A", 0))
    bus.publish(frame("A", 1))
    with pytest.raises(BusFull):
        bus.publish(frame("A", 2))
    with pytest.raises(BusFull):
        bus.publish(frame("A", 2), block=True, timeout=0.05)
    assert [bus.consume("A").seq, bus.consume("A").seq] == [0, 1]


def test_blocking_publish_waits_for_consumer():
    bus = MemoryBus(max_pending=1)
    bus.publish(frame("A", 0))
    t = threading.Thread(target=lambda: bus.publish(frame("A", 1), block=True, timeout=5))
    t.start()
    assert bus.consume("A", timeout=1).seq == 0
    t.join(5)
    assert bus.consume("A", timeout=1).seq == 1


def test_close_drains_then_ends():
    bus = MemoryBus()
    bus.publish(frame("A", 0))
    bus.close_point("A")
    with pytest.raises(BusClosed):
        bus.publish(frame("A", 1))
    assert [f.seq for f in bus.iter_point("A")] == [0]
    assert bus.consume("A", timeout=0.01) is None
