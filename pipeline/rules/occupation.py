"""Street occupation (占道设摊, 出店经营, 乱堆物料): an item left standing in a no-occupation zone.

Per zone and subtype the rule keeps "stationary candidates", each anchored at the box where an item was
first seen. A detection continues a candidate while it overlaps that anchor (IoU >= stationary_iou), so
a cart wheeled along keeps starting new candidates and never accumulates time. Tracker ids are not used:
a passer-by walking in front of a stall breaks ByteTrack's id, but the stall comes back at its anchor.
A candidate survives `max_unseen_s` without a matching box, must have been seen in at least
`min_seen_fraction` of the frames since it appeared (a flickering false positive cannot build up time),
and triggers when seen again after the point's dwell time. One event per (zone, subtype) episode; the
episode ends once the zone has held no item of that subtype for `cooldown_s`.

>>> from datetime import datetime, timedelta, timezone
>>> import numpy as np, supervision as sv
>>> from feixian.config import Point, Source, Zone
>>> from pipeline.frames import Frame
>>> point = Point(id="P1", name="n", town="t", device_id="d", gps=(31.0, 121.0), source=Source(kind="push"),
...               zones=[Zone(id="front", kind="no_occupation", polygon=[(0, 0), (320, 0), (320, 240), (0, 240)])],
...               dwell_seconds=10)
>>> rule = OccupationRule(point)
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> stall = sv.Detections(xyxy=np.array([[50.0, 100, 120, 200]]), confidence=np.array([0.8]),
...                       class_id=np.array([5]), data={"class_name": np.array(["stall"])})
>>> events = [e for s in range(12) for e in rule.update(Frame("P1", s, t0 + timedelta(seconds=s), b""), stall)]
>>> [(e.subtype, e.zone_id, (e.triggered_at - e.started_at).total_seconds()) for e in events]
[('stall', 'front', 10.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field, model_validator

from feixian.config import ZONE_KINDS_FOR, Category, Point
from pipeline.events import KeyFrame, ViolationEvent
from pipeline.frames import Frame
from pipeline.rules._detections import Columns, match_by_iou
from pipeline.taxonomy import OCCUPATION_CLASSES, occupation_subtype
from pipeline.zones import ZoneTester, zone_testers


class OccupationRuleSettings(BaseModel):
    """How the occupation rule tells a standing item from a passing one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stationary_iou: float = Field(
        default=0.5,
        ge=0.1,
        le=0.95,
        description="An item has not moved while its box overlaps the box where it was first seen by at "
        "least this IoU; below it, it moved and its dwell timer starts again.",
    )
    max_unseen_s: float = Field(
        default=15.0,
        ge=0,
        le=600,
        description="An item unseen this long (hidden by passers-by, missed by the detector) loses its timer.",
    )
    min_seen_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the frames since an item appeared in which it must have been detected, "
        "so a sporadic false positive cannot accumulate dwell time.",
    )
    cooldown_s: float = Field(
        default=20.0,
        ge=0,
        le=3600,
        description="After an event, the zone must hold no item of that subtype this long before a new "
        "episode (and event) may start.",
    )

    @model_validator(mode="after")
    def _cooldown_covers_occlusion(self) -> OccupationRuleSettings:
        # A zone whose item is merely hidden is not clear; a shorter cooldown would re-report the same item.
        if self.cooldown_s < self.max_unseen_s:
            raise ValueError("cooldown_s must be at least max_unseen_s")
        return self


@dataclass(eq=False)
class _Candidate:
    """An item that may be standing still: where and when it was first seen, and how often since."""

    anchor: np.ndarray
    first_seen: KeyFrame
    started_at: datetime
    last_seen_at: datetime
    frames_alive: int = 1
    frames_seen: int = 1

    @property
    def seen_fraction(self) -> float:
        return self.frames_seen / self.frames_alive


@dataclass(eq=False)
class _ZoneSubtype:
    """State of one (zone, subtype) pair."""

    candidates: list[_Candidate] = field(default_factory=list)
    last_present_at: datetime | None = None
    in_episode: bool = False


class OccupationRule:
    """Emits one `ViolationEvent` per (no-occupation zone, occupation subtype) episode at one point.

    Args:
        point: the point: its id, its `no_occupation` zones and its `dwell_seconds`.
        settings: see `OccupationRuleSettings`.
    """

    category = Category.OCCUPATION

    def __init__(self, point: Point, settings: OccupationRuleSettings | None = None):
        self.point_id = point.id
        self.dwell_s = point.dwell_seconds
        self.settings = settings or OccupationRuleSettings()
        self._zones: list[ZoneTester] = zone_testers(point.zones, ZONE_KINDS_FOR[Category.OCCUPATION])
        self._subtypes = sorted(set(OCCUPATION_CLASSES.values()))
        self._state: dict[tuple[str, str], _ZoneSubtype] = {}

    def update(self, frame: Frame, detections: sv.Detections) -> list[ViolationEvent]:
        """Feed one frame's (tracked) detections; returns the events whose dwell time was crossed."""
        if not self._zones:
            return []
        cols = Columns.of(detections)
        subtypes = np.array([occupation_subtype(n) or "" for n in cols.names], dtype=object)
        events = []
        for zone in self._zones:
            inside = zone.contains(cols.xyxy)
            for subtype in self._subtypes:
                idx = np.flatnonzero(inside & (subtypes == subtype))
                key = (zone.id, subtype)
                state = self._state.get(key)
                if state is None:
                    if not len(idx):
                        continue
                    state = self._state[key] = _ZoneSubtype()
                event = self._step(state, zone, subtype, frame, cols, idx)
                if event is not None:
                    events.append(event)
                if not state.candidates and not state.in_episode:
                    del self._state[key]
        return events

    def _step(
        self, state: _ZoneSubtype, zone: ZoneTester, subtype: str, frame: Frame, cols: Columns, idx: np.ndarray
    ) -> ViolationEvent | None:
        now = frame.captured_at
        s = self.settings
        if len(idx):
            state.last_present_at = now
        if state.in_episode:
            assert state.last_present_at is not None
            if (now - state.last_present_at).total_seconds() >= s.cooldown_s:
                state.in_episode = False
            return None
        anchors = np.array([c.anchor for c in state.candidates]).reshape(-1, 4)
        pairs = match_by_iou(anchors, cols.xyxy[idx], s.stationary_iou)
        for c in state.candidates:
            c.frames_alive += 1
        seen = [state.candidates[ci] for ci, _ in pairs]
        for c in seen:
            c.frames_seen += 1
            c.last_seen_at = now
        state.candidates = [c for c in state.candidates if (now - c.last_seen_at).total_seconds() <= s.max_unseen_s]
        matched = {di for _, di in pairs}
        for di in range(len(idx)):
            if di not in matched:
                i = int(idx[di])
                first = KeyFrame("first_seen", frame, [cols.object(i)])
                state.candidates.append(_Candidate(cols.xyxy[i].copy(), first, now, now))
        due = [
            c
            for c in seen
            if (now - c.started_at).total_seconds() >= self.dwell_s and c.seen_fraction >= s.min_seen_fraction
        ]
        if not due:
            return None
        item = min(due, key=lambda c: c.started_at)
        state.in_episode = True
        state.candidates = []
        objects = [cols.object(int(i)) for i in idx]
        return ViolationEvent(
            point_id=self.point_id,
            category=Category.OCCUPATION,
            subtype=subtype,
            zone_id=zone.id,
            started_at=item.started_at,
            triggered_at=now,
            ended_at=None,
            objects=objects,
            keyframes=[item.first_seen, KeyFrame("after_dwell", frame, objects)],
            details={
                "dwell_s": round((now - item.started_at).total_seconds(), 3),
                "dwell_threshold_s": self.dwell_s,
                "seen_fraction": round(item.seen_fraction, 3),
                "stationary_iou": s.stationary_iou,
            },
        )

    def flush(self, at: datetime) -> list[ViolationEvent]:
        """End of stream: nothing more is due (an item only triggers when seen after its dwell time, and
        no frame after the last one shows it); forget all candidates and episodes."""
        self._state.clear()
        return []
