"""A point worker drops (counts, logs) the frames it cannot judge and goes on with the next: a frame stamped
2099 must not make every later frame look "too close to the last one" (issue 28), a frame out of order or
too large to decode is dropped alone."""

from __future__ import annotations

import logging
import tracemalloc
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import supervision as sv

from cases.store import EvidenceSettings
from feixian.domain import Point, Source
from pipeline.frames import Frame, FrameLimits, encode_jpeg, jpeg_size
from pipeline.worker import PointWorker

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
POINT = Point(
    id="P1",
    name="n",
    town="t",
    device_id="d",
    gps=(31.0, 121.0),
    source=Source(kind="push"),
    announced_on=date(2025, 1, 1),
)
JPEG = encode_jpeg(np.zeros((36, 64, 3), np.uint8))


class CountingDetector:
    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image) -> sv.Detections:
        self.shapes.append(image.shape)
        return sv.Detections.empty()


class PassThrough:
    def update(self, detections: sv.Detections, at: datetime) -> sv.Detections:
        return detections


def make_worker(limits: FrameLimits) -> tuple[PointWorker, CountingDetector]:
    detector = CountingDetector()
    worker = PointWorker(
        POINT, detector, PassThrough(), [], None, lambda e, b: None, EvidenceSettings(), [], limits=limits
    )
    return worker, detector


def declaring(width: int, height: int) -> bytes:
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def frames(start: datetime, n: int, step_s: float = 0.2, seq0: int = 0) -> list[Frame]:
    return [Frame("P1", seq0 + i, start + timedelta(seconds=i * step_s), JPEG) for i in range(n)]


LIVE = FrameLimits(max_ahead=timedelta(minutes=5), clock=lambda: NOW)


def test_a_frame_stamped_2099_is_dropped_and_the_point_goes_on() -> None:
    worker, detector = make_worker(LIVE)
    worker.process(Frame("P1", 0, datetime(2099, 1, 1, tzinfo=UTC), JPEG))
    for f in frames(NOW - timedelta(seconds=10), 10, seq0=1):
        worker.process(f)
    assert (worker.stats.future, worker.stats.frames, worker.stats.skipped) == (1, 10, 0)
    assert len(detector.shapes) == 10


def test_frames_out_of_order_are_dropped_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    worker, detector = make_worker(LIVE)
    later = frames(NOW - timedelta(seconds=5), 3)
    earlier = frames(NOW - timedelta(seconds=60), 5, seq0=10)
    with caplog.at_level(logging.WARNING, logger="pipeline.worker"):
        for f in [*later, *earlier, *frames(NOW - timedelta(seconds=4), 2, seq0=20)]:
            worker.process(f)
    assert (worker.stats.frames, worker.stats.out_of_order) == (5, 5)
    assert len(detector.shapes) == 5
    # Logged the 1st, 2nd and 4th time: visible, without a line per frame.
    drops = [r.getMessage() for r in caplog.records if "dropped (out_of_order" in r.getMessage()]
    assert len(drops) == 3
    assert "point P1: frame 10 at" in drops[0]


@pytest.mark.parametrize("size", [(20000, 20000), (60000, 60000)])
def test_a_frame_declaring_too_many_pixels_is_dropped_without_decoding(size: tuple[int, int]) -> None:
    worker, detector = make_worker(LIVE)
    bomb = Frame("P1", 0, NOW - timedelta(seconds=2), declaring(*size))
    assert jpeg_size(bomb.jpeg) == size
    tracemalloc.start()
    try:
        worker.process(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # a decode would take 1.2 GB (20000x20000x3)
    assert worker.stats.undecodable == 1
    # The dropped frame set no time: the next frame, even an earlier one, is analysed.
    worker.process(Frame("P1", 1, NOW - timedelta(seconds=3), JPEG))
    assert (worker.stats.frames, detector.shapes) == (1, [(36, 64, 3)])


def test_undecodable_bytes_are_dropped_and_the_next_frame_is_analysed() -> None:
    worker, detector = make_worker(LIVE)
    worker.process(Frame("P1", 0, NOW - timedelta(seconds=2), b"\xff\xd8garbage"))
    worker.process(Frame("P1", 1, NOW - timedelta(seconds=1), JPEG))
    assert (worker.stats.undecodable, worker.stats.frames) == (1, 1)


def test_replays_keep_their_own_clock() -> None:
    # A replay's frames carry its video's clock, which may be any date: only live runs judge the clock.
    worker, _ = make_worker(FrameLimits(max_ahead=None))
    for f in frames(datetime(2099, 1, 1, tzinfo=UTC), 3):
        worker.process(f)
    assert (worker.stats.frames, worker.stats.future) == (3, 0)


def test_frames_beyond_the_detect_rate_are_skipped_not_dropped() -> None:
    worker, _ = make_worker(LIVE)
    for f in frames(NOW - timedelta(seconds=5), 10, step_s=0.1):
        worker.process(f)
    assert (worker.stats.frames, worker.stats.skipped, worker.stats.out_of_order) == (5, 5, 0)


@pytest.mark.parametrize(("source_fps", "point_fps"), [(5, 2), (25, 2), (10, 5), (5, 5), (30, 4)])
def test_a_faster_source_is_analysed_at_the_points_rate(source_fps: int, point_fps: float) -> None:
    """A 5 fps camera at a 2 fps point gives frames 0.6 and 0.4 s apart: both are the point's, or the point is
    analysed at 1 fps (as it was, with a minimum gap of 0.95 periods between frames)."""
    worker, detector = make_worker(FrameLimits(max_ahead=None))
    point = POINT.model_copy(update={"detect_fps": point_fps})
    worker = PointWorker(
        point, detector, PassThrough(), [], None, lambda e, b: None, EvidenceSettings(), [], limits=worker.limits
    )
    for f in frames(NOW, 20 * source_fps, step_s=1 / source_fps):
        worker.process(f)
    assert worker.stats.frames == 20 * point_fps
    assert worker.stats.skipped == 20 * (source_fps - point_fps)
