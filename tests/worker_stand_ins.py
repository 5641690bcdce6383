"""Stand-ins for a point worker's parts, for tests that drive `LivePipeline` without a model or a database:
a detector the test can hold in inference, a tracker that keeps detections as they are, and a push point."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

import supervision as sv

from cases.store import EvidenceSettings
from feixian.domain import Point, Source
from pipeline.worker import PointWorker, Rule


class GatedDetector:
    """Detects nothing, and only while `gate` is open: a worker stuck in inference while it is shut."""

    def __init__(self, open_: bool = True) -> None:
        self.gate = threading.Event()
        if open_:
            self.gate.set()

    def detect(self, image) -> sv.Detections:
        self.gate.wait()
        return sv.Detections.empty()


class PassThrough:
    """A tracker that keeps every detection as it is."""

    def update(self, detections: sv.Detections, at: datetime) -> sv.Detections:
        return detections


def push_point(pid: str) -> Point:
    """A registered point that takes pushed frames, with no zone and no category."""
    return Point(id=pid, name="n", town="t", device_id="d", gps=(31.0, 121.0), source=Source(kind="push"))


def quiet_worker(point: Point, detector: GatedDetector, rules: Sequence[Rule] = ()) -> PointWorker:
    """`point`'s worker with `detector` and `rules`, filing nothing: no evidence builder, no case sink."""
    return PointWorker(point, detector, PassThrough(), list(rules), None, lambda e, b: None, EvidenceSettings(), [])
