"""Muck trucks (车容不洁 / 带泥上路, 渣土车未密闭): judge each truck passage through a roadway or site exit.

A passage opens when a tracked object in a vehicle zone is first seen as a truck (`truck`, `truck_dirty`
or `truck_uncovered`). Every frame of it in the zone then casts a vote weighted by the detection's
confidence: dirty, uncovered, or neither (a plain truck, or a car it was briefly mistaken for). When the
track has been gone for `lost_after_s` (or the stream ends) the passage is judged once: seen whole in at
least `min_frames` frames (or, a truck too close to ever fit in the frame, cut off by its border in at
least `min_cut_frames`), and dirty or uncovered in at least `min_share` of those frames' vote weight,
gives one event whose subtype is the heavier of the two. A tracker id switch must not split one truck into two
passages: a new track that starts, shortly after another went missing, where that one was heading joins
its passage.

The event's times are the passage's own: started at its first sighting, triggered and ended at its last
(the last evidence judged; waiting `lost_after_s` only makes sure no more is coming, and must not put the
trigger after the end). Its key frames are the most confident views of the attribute at least
`KEYFRAME_GAP_S` apart, in time order: two views a frame apart show one moment twice.

>>> from datetime import datetime, timedelta, timezone
>>> import numpy as np, supervision as sv
>>> from feixian.domain import Point, Source, Zone
>>> from pipeline.frames import Frame
>>> point = Point(id="P1", name="n", town="t", device_id="d", gps=(31.0, 121.0), source=Source(kind="push"),
...               zones=[Zone(id="road", kind="roadway", polygon=[(0, 0), (320, 0), (320, 240), (0, 240)])])
>>> rule = VehicleRule(point)
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> for s in range(8):
...     truck = sv.Detections(xyxy=np.array([[20.0 + 20 * s, 80, 120 + 20 * s, 160]]), confidence=np.array([0.7]),
...                           class_id=np.array([3]), data={"class_name": np.array(["truck_dirty"])},
...                           tracker_id=np.array([4]))
...     _ = rule.update(Frame("P1", s, t0 + timedelta(seconds=0.2 * s), b""), truck)
>>> [(e.subtype, [k.label for k in e.keyframes]) for e in rule.flush(t0 + timedelta(seconds=3))]
[('dirty', ['best_1', 'best_2'])]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import supervision as sv

from feixian.domain import ZONE_KINDS_FOR, Category, Point
from feixian.rule_settings import VehicleRuleSettings
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.frames import Frame
from pipeline.rules._detections import Columns
from pipeline.taxonomy import TRUCK_CLASSES, vehicle_subtype
from pipeline.zones import ZoneTester, zone_testers

ATTRIBUTES = ("dirty", "uncovered")
KEYFRAMES = 2
KEYFRAME_GAP_S = 1.0  # also gives the key frames distinct times to the second, as the case page shows them


@dataclass(frozen=True)
class _Sighting:
    """One frame where the truck showed an attribute, kept as candidate evidence."""

    frame: Frame
    seen: ObjectSeen


@dataclass(eq=False)
class _Votes:
    """How a truck looked over one kind of view of it: whole, or cut off by the frame border."""

    frames: int = 0
    total_weight: float = 0.0
    weight: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ATTRIBUTES, 0.0))
    best: dict[str, list[_Sighting]] = field(default_factory=lambda: {a: [] for a in ATTRIBUTES})

    def add(self, frame: Frame, seen: ObjectSeen) -> None:
        self.frames += 1
        self.total_weight += seen.confidence
        attribute = vehicle_subtype(seen.class_name) if seen.class_name in TRUCK_CLASSES else None
        if attribute is not None:
            self.weight[attribute] += seen.confidence
            _keep_best(self.best[attribute], _Sighting(frame, seen))

    def share(self, attribute: str) -> float:
        return self.weight[attribute] / self.total_weight if self.total_weight > 0 else 0.0


def _keep_best(best: list[_Sighting], new: _Sighting) -> None:
    """Keep in `best` the `KEYFRAMES` most confident sightings at least `KEYFRAME_GAP_S` apart.

    Only these few are evidence; the rest of the history is not kept. A new sighting displaces those too
    close to it only when it is more confident than each of them (greedy, so memory stays bounded)."""
    at = new.frame.captured_at
    close = [s for s in best if abs((s.frame.captured_at - at).total_seconds()) < KEYFRAME_GAP_S]
    if any(s.seen.confidence >= new.seen.confidence for s in close):
        return
    best[:] = sorted([s for s in best if s not in close] + [new], key=lambda s: -s.seen.confidence)[:KEYFRAMES]


@dataclass(eq=False)
class _Passage:
    """One truck's way through a vehicle zone, possibly under several tracker ids."""

    zone_id: str
    started_at: datetime
    last_seen_at: datetime
    last_box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # px/s per box coordinate
    track_ids: set[int] = field(default_factory=set)
    whole: _Votes = field(default_factory=_Votes)
    cut: _Votes = field(default_factory=_Votes)
    largest: list[_Sighting] = field(default_factory=list)  # where the plate is likeliest to be legible

    def observe(
        self, frame: Frame, box: np.ndarray, seen: ObjectSeen, full_view: bool = True, keep_largest: int = 0
    ) -> None:
        """Follow the truck to `box`, count its look among the whole or the cut-off views, and keep the
        `keep_largest` frames where it is boxed largest."""
        dt = (frame.captured_at - self.last_seen_at).total_seconds()
        if dt < 0 or (dt == 0 and self.whole.frames + self.cut.frames):
            return  # an old and a new id of this truck both in one frame: one vote
        if dt > 0:
            self.velocity = (box - self.last_box) / dt
        self.last_box = box
        self.last_seen_at = frame.captured_at
        (self.whole if full_view else self.cut).add(frame, seen)
        if keep_largest:
            self.largest.append(_Sighting(frame, seen))
            self.largest.sort(key=lambda s: -_area(s.seen.box))
            del self.largest[keep_largest:]

    def predicted_box(self, at: datetime) -> np.ndarray:
        return self.last_box + self.velocity * (at - self.last_seen_at).total_seconds()


def _area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


class VehicleRule:
    """Emits one `ViolationEvent` per dirty or uncovered truck passage through a roadway/site-exit zone.

    Detections must be tracked (`tracker_id`); unconfirmed ones (-1) are ignored. A view of a truck cut
    off by the frame border (`data["at_edge"]`) counts only for a truck that never shows whole long
    enough to judge (see `VehicleRuleSettings.min_cut_frames`); the event says which views judged it.

    Args:
        point: the point: its id and its `roadway` / `site_exit` zones.
        settings: see `VehicleRuleSettings`.
        start_confidence: a passage opens only on a truck detection scoring at least this (the model's
            conf_threshold); weaker ones only follow it.
        plate_views: the event carries this many frames of the passage, those where the truck is boxed
            largest, for reading its plate (`ViolationEvent.plate_views`); 0: none.
    """

    category = Category.VEHICLE

    def __init__(
        self,
        point: Point,
        settings: VehicleRuleSettings | None = None,
        start_confidence: float = 0.0,
        plate_views: int = 0,
    ):
        self.point_id = point.id
        self.settings = settings or VehicleRuleSettings()
        self.start_confidence = start_confidence
        self.plate_views = plate_views
        self._zones: list[ZoneTester] = zone_testers(point.zones, ZONE_KINDS_FOR[Category.VEHICLE])
        self._by_track: dict[int, _Passage] = {}

    def update(self, frame: Frame, detections: sv.Detections) -> list[ViolationEvent]:
        """Feed one frame's tracked detections; returns the events of passages that ended before it."""
        now = frame.captured_at
        cols = Columns.of(detections)
        if self._zones and len(cols.xyxy):
            in_zone = np.stack([z.contains(cols.xyxy) for z in self._zones])  # (zones, detections)
            for i in np.flatnonzero((cols.tracker_id >= 0) & in_zone.any(axis=0)):
                self._observe(frame, cols, int(i), self._zones[int(in_zone[:, i].argmax())].id)
        ended = [p for p in self._open() if (now - p.last_seen_at).total_seconds() > self.settings.lost_after_s]
        return self._close(ended)

    def _open(self) -> list[_Passage]:
        """Open passages, oldest first (several track ids may share one)."""
        return list(dict.fromkeys(self._by_track.values()))

    def _observe(self, frame: Frame, cols: Columns, i: int, zone_id: str) -> None:
        tid = int(cols.tracker_id[i])
        box = cols.xyxy[i]
        passage = self._by_track.get(tid)
        if passage is None:
            if cols.names[i] not in TRUCK_CLASSES or cols.confidence[i] < self.start_confidence:
                return
            passage = self._passage_to_join(box, frame.captured_at) or _Passage(
                zone_id, frame.captured_at, frame.captured_at, box.copy()
            )
            passage.track_ids.add(tid)
            self._by_track[tid] = passage
        passage.observe(frame, box.copy(), cols.object(i), not cols.at_edge[i], self.plate_views)

    def _passage_to_join(self, box: np.ndarray, at: datetime) -> _Passage | None:
        """An open passage, seen in this frame or missing since just before `at`, whose truck would now be
        where `box` is: the same truck under a new tracker id, or a second box on it (a truck close to the
        camera can be boxed as its front, its body and its whole)."""
        recent = [p for p in self._open() if 0 <= (at - p.last_seen_at).total_seconds() <= self.settings.merge_within_s]
        if not recent:
            return None
        predicted = np.array([p.predicted_box(at) for p in recent])
        iou = sv.box_iou_batch(predicted, box[None])[:, 0]
        ios = sv.box_iou_batch(predicted, box[None], overlap_metric=sv.OverlapMetric.IOS)[:, 0]
        # An IoU match is the surer one; among overlap-only matches, the passage covering most of the box.
        score = np.where(iou >= self.settings.merge_iou, 1 + iou, np.where(ios >= self.settings.merge_overlap, ios, 0))
        best = int(score.argmax())
        return recent[best] if score[best] > 0 else None

    def _close(self, passages: list[_Passage]) -> list[ViolationEvent]:
        events = []
        for p in passages:
            for tid in p.track_ids:
                del self._by_track[tid]
            event = self._judge(p)
            if event is not None:
                events.append(event)
        return events

    def _judge(self, p: _Passage) -> ViolationEvent | None:
        s = self.settings
        if p.whole.frames >= s.min_frames:
            view, votes = "whole", p.whole
        elif s.min_cut_frames is not None and p.cut.frames >= s.min_cut_frames:
            view, votes = "cut", p.cut
        else:
            return None
        attribute = max(ATTRIBUTES, key=lambda a: votes.weight[a])
        if votes.share(attribute) < s.min_share:
            return None
        best = votes.best[attribute]
        in_time = sorted(best, key=lambda b: b.frame.captured_at)
        return ViolationEvent(
            point_id=self.point_id,
            category=Category.VEHICLE,
            subtype=attribute,
            zone_id=p.zone_id,
            started_at=p.started_at,
            triggered_at=p.last_seen_at,
            ended_at=p.last_seen_at,
            objects=[best[0].seen],
            keyframes=[KeyFrame(f"best_{k + 1}", b.frame, [b.seen]) for k, b in enumerate(in_time)],
            plate_views=[KeyFrame(f"largest_{k + 1}", v.frame, [v.seen]) for k, v in enumerate(p.largest)],
            details={
                "view": view,
                "frames": votes.frames,
                "dirty_share": round(votes.share("dirty"), 3),
                "uncovered_share": round(votes.share("uncovered"), 3),
                "min_share": s.min_share,
                "track_ids": sorted(p.track_ids),
            },
        )

    def flush(self, at: datetime) -> list[ViolationEvent]:
        """End of stream (at `at`): judge every passage still open, on the sightings it has."""
        return self._close(self._open())
