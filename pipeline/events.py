"""Violation events: what the rules emit and the evidence builder turns into a case.

The event id is derived from what happened (point, category, subtype, zone, start time), so the same
footage replayed twice, or pushed over HTTP instead of read from a file, yields the same ids and the
case store can be idempotent on them.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
>>> a = make_event_id("JDZ-001", "occupation", "stall", "front", t)
>>> a == make_event_id("JDZ-001", "occupation", "stall", "front", t), len(a)
(True, 32)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from feixian.domain import Category
from pipeline.frames import Frame

Box = tuple[float, float, float, float]


def make_event_id(point_id: str, category: str, subtype: str, zone_id: str, started_at: datetime) -> str:
    key = f"{point_id}|{category}|{subtype}|{zone_id}|{started_at.isoformat(timespec='milliseconds')}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ObjectSeen:
    """One detected object as the rule saw it in one frame."""

    box: Box
    class_name: str
    confidence: float
    track_id: int | None = None


@dataclass(eq=False)
class KeyFrame:
    """A frame chosen as evidence, with the objects that make it so."""

    label: str  # e.g. "first_seen", "after_dwell", "best_1"; an event lists its key frames in time order
    frame: Frame
    objects: list[ObjectSeen]


@dataclass(eq=False)
class ViolationEvent:
    """One violation episode at one point: one case if the point and category may raise cases."""

    point_id: str
    category: Category
    subtype: str
    zone_id: str
    started_at: datetime  # object first seen in the zone
    triggered_at: datetime  # dwell crossed (occupation) / last sighting judged (vehicle); >= started_at
    ended_at: datetime | None  # >= triggered_at; None while it goes on
    objects: list[ObjectSeen]
    keyframes: list[KeyFrame]
    plate: str | None = None
    plate_crop: bytes | None = None  # JPEG of the plate as read, stored with the evidence
    plate_views: list[KeyFrame] = field(default_factory=list)  # frames to read the plate from, not evidence
    details: dict = field(default_factory=dict)  # rule figures: dwell, vote fractions, thresholds

    @property
    def event_id(self) -> str:
        return make_event_id(self.point_id, self.category.value, self.subtype, self.zone_id, self.started_at)

    @property
    def confidence(self) -> float:
        return max((o.confidence for o in self.objects), default=0.0)
