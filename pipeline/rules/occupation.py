"""Street occupation (占道设摊, 出店经营, 乱堆物料): an item left standing in a no-occupation zone.

Per zone the rule keeps "stationary candidates", each anchored at the box where an item was first seen
and voting over its life on what it is (the subtype is the confidence-weighted majority, so detector
flicker between `goods` and `stall` cannot split one pile into two events). A detection of any occupation
class continues a candidate while it overlaps that anchor (IoU >= stationary_iou), so a cart wheeled
along keeps starting new candidates and never accumulates time. Tracker ids are not used:
a passer-by walking in front of a stall breaks ByteTrack's id, but the stall comes back at its anchor.
A box of another class that comes into view in the same frame as an item and lies mostly on it (a crate
of a pile the detector also boxes as a chair; `part_of_share` of its area on it) is part of that item
whenever it is seen again there, never an item itself.

Only a confident detection (`start_confidence`) starts a candidate; once it has been confidently seen
`confirm_frames` times, weaker ones continue it too, since an item half hidden by a passer-by scores lower (a
ghost box that once scores high is not followed on its weak echoes). A candidate may go unseen for
`young_unseen_s` plus the time it has stood, at most `max_unseen_s`: a cart that paused for a second is soon
forgotten (goods put down where it paused are a new item), a stall that has stood for minutes survives a van
parked in front of it. While a passing vehicle covers the spot of a confirmed item (`hidden_share`) it is
hidden, not gone: that time neither counts against it nor towards its seen fraction, up to `max_unseen_s` (a
muck truck may hide a table set put out a few seconds before for longer than such a young item may go unseen;
a box seen once or twice, often a shifted duplicate of an item already followed, is not kept). Once lost
(unseen longer than `young_unseen_s`) it comes back only as what it was mostly called, so a cart wheeled over
the spot of a removed box cannot hand the box's time on to goods put down there later. It must have been seen
in at least `min_seen_fraction` of the frames since it appeared (a flickering false positive cannot build up
time), and triggers when seen again after the point's dwell time. One event per (zone, subtype) episode; the
episode ends once the zone has held no item of that subtype for `cooldown_s`.

An item first named where another followed item stands (a stack of crates the detector boxed with the stool in
front of it as one chair, named only once the stool leaves) has stood since its box took its present look, not
since the detector named it: given a `StillnessMap`, it is dated from when `revealed_share` of its box's
pixels took the look they have now, if that happened after the item in front appeared (what already showed
then is that item's) and while it still stood, and if the item in front is not seen again while the revealed
one is confirmed (a detector flipping a pile from goods to stall and back reveals nothing). Such an item needs
`confirm_frames` confident sightings before it may trigger, since its dwell may be over already.

>>> from datetime import datetime, timedelta, timezone
>>> import numpy as np, supervision as sv
>>> from feixian.domain import Point, Source, Zone
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
from datetime import datetime, timedelta

import numpy as np
import supervision as sv

from feixian.domain import ZONE_KINDS_FOR, Category, Point
from feixian.rule_settings import OccupationRuleSettings
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.frames import Frame
from pipeline.rules._detections import Columns, match_by_iou
from pipeline.stillness import StillnessMap
from pipeline.stream_scale import inverse
from pipeline.taxonomy import TRUCK_CLASSES, occupation_subtype
from pipeline.zones import ZoneTester, zone_testers


@dataclass(eq=False)
class _Candidate:
    """An item that may be standing still: where and when it was first seen, how often since, and what
    the detector called it (confidence-weighted votes per subtype: a pile of goods the detector calls
    `stall` in a few frames is still goods)."""

    anchor: np.ndarray
    first_seen: KeyFrame
    started_at: datetime  # when it was put there: when first named, or when its pixels took their look
    last_seen_at: datetime
    votes: dict[str, float]
    in_front: list[_Candidate] = field(default_factory=list)  # items it was revealed behind, if pixel-dated
    frames_alive: int = 1  # frames since it appeared in which it could be seen (not hidden by a vehicle)
    frames_seen: int = 1
    frames_confident: int = 1
    reported_as: str | None = None  # the subtype of the episode it belongs to, once due
    last_hidden_at: datetime | None = None  # when a vehicle last covered its spot while it went unseen
    parts: list[np.ndarray] = field(default_factory=list)  # boxes of other names that came with it, on it

    @property
    def named_at(self) -> datetime:
        """When the detector first named it (its first_seen key frame)."""
        return self.first_seen.frame.captured_at

    @property
    def seen_fraction(self) -> float:
        return self.frames_seen / self.frames_alive

    def unseen_allowance_s(self, settings: OccupationRuleSettings) -> float:
        stood = (self.last_seen_at - self.started_at).total_seconds()
        return min(settings.max_unseen_s, settings.young_unseen_s + stood)

    def survives(self, now: datetime, settings: OccupationRuleSettings) -> bool:
        """Still followed: unseen (other than hidden) within its allowance, and never unseen over max_unseen_s."""
        since = max(self.last_seen_at, self.last_hidden_at or self.last_seen_at)
        return (now - since).total_seconds() <= self.unseen_allowance_s(settings) and (
            now - self.last_seen_at
        ).total_seconds() <= settings.max_unseen_s

    @property
    def subtype(self) -> str:
        return max(sorted(self.votes), key=self.votes.__getitem__)

    def continues_as(self, now: datetime, settings: OccupationRuleSettings) -> str | None:
        """The only subtype a detection may continue this item as, or None for any.

        A reported item only continues as its own subtype: a stall set up where the chairs of an earlier
        episode stood is a new item, not more of the old one. An item lost for longer than a passer-by
        hides one (young_unseen_s) comes back only as what it was mostly called: a cart wheeled past the
        spot of a removed box must not carry the box's timer on to goods put down there later."""
        if self.reported_as is not None:
            return self.reported_as
        if (now - self.last_seen_at).total_seconds() > settings.young_unseen_s:
            return self.subtype
        return None


@dataclass(eq=False)
class _ZoneState:
    """Candidates of one zone, and per subtype when an item of its current episode was last seen."""

    candidates: list[_Candidate] = field(default_factory=list)
    episode_seen_at: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class _InZone:
    """One frame's occupation items inside one zone, as the rule's steps read them."""

    frame: Frame
    cols: Columns
    subtypes: np.ndarray  # per detection of the frame: its occupation subtype, "" for other classes
    idx: np.ndarray  # the frame's detections (indices into cols) of occupation items inside the zone
    confident: np.ndarray  # per entry of idx: scored at least start_confidence, so it may start an item

    @property
    def now(self) -> datetime:
        return self.frame.captured_at

    @property
    def boxes(self) -> np.ndarray:
        return self.cols.xyxy[self.idx]


# What may stand in front of an item without taking it away.
HIDING_CLASSES = frozenset({"car", *TRUCK_CLASSES})


def _area(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])


def _arrived_under(
    candidates: list[_Candidate], box: np.ndarray, subtype: str, now: datetime, s: OccupationRuleSettings
) -> _Candidate | None:
    """A larger item of another subtype, first seen in this very frame, that `box` lies on.

    What comes into view in the same frame as an item, on top of it, is part of it: a crate of a pile the
    detector also boxes as a chair is not a chair put out at the pile's arrival. A chair put out in front
    of a stall that already stands is a new item, as is anything beside it. Only the same frame: on the
    seed-3001 videos a table set's chair put out in front of goods 0.2 s after them was a true item."""
    for c in candidates:
        if c.subtype == subtype or c.named_at != now:
            continue
        if _share_inside(box, c.anchor) >= s.part_of_share and _area(c.anchor[None])[0] > _area(box[None])[0]:
            return c
    return None


def _in_front(candidates: list[_Candidate], box: np.ndarray, now: datetime, share: float) -> list[_Candidate]:
    """Followed items, named before now, that cover at least `share` of `box`."""
    return [c for c in candidates if c.named_at < now and _share_inside(box, c.anchor) >= share]


def _share_inside(box: np.ndarray, other: np.ndarray) -> float:
    """The share of `box`'s area that lies inside `other` (0 for an empty box)."""
    x1, y1 = np.maximum(box[:2], other[:2])
    x2, y2 = np.minimum(box[2:], other[2:])
    own = _area(box[None])[0]
    return float(max(0.0, x2 - x1) * max(0.0, y2 - y1) / own) if own > 0 else 0.0


def _covered(anchors: np.ndarray, boxes: np.ndarray, share: float) -> np.ndarray:
    """Which `anchors` lie at least `share` inside one of `boxes`."""
    if not len(anchors) or not len(boxes):
        return np.zeros(len(anchors), dtype=bool)
    lo = np.maximum(anchors[:, None, :2], boxes[None, :, :2])
    hi = np.minimum(anchors[:, None, 2:], boxes[None, :, 2:])
    inside = np.clip(hi - lo, 0, None).prod(axis=2)
    return (inside >= share * _area(anchors)[:, None]).any(axis=1)


def _on_parts(candidates: list[_Candidate], boxes: np.ndarray, min_iou: float) -> np.ndarray:
    """Which of `boxes` are seen again where a part of a followed item was (IoU >= min_iou)."""
    parts = [p for c in candidates for p in c.parts]
    if not parts or not len(boxes):
        return np.zeros(len(boxes), dtype=bool)
    return (sv.box_iou_batch(np.array(parts), boxes) >= min_iou).any(axis=0)


def _undo_unrevealed(seen: list[_Candidate]) -> None:
    """Items dated from their pixels whose item in front is seen again: nothing was revealed (the detector
    flipped a pile's name and back), so each is as old as its name."""
    for c in seen:
        if c.reported_as is None and c.in_front and any(f.last_seen_at >= c.named_at for f in c.in_front):
            c.started_at, c.in_front = c.named_at, []


class OccupationRule:
    """Emits one `ViolationEvent` per (no-occupation zone, occupation subtype) episode at one point.

    Args:
        point: the point: its id, its `no_occupation` zones and its `dwell_seconds`.
        settings: see `OccupationRuleSettings`.
        start_confidence: a detection must score at least this to start a candidate (the model's
            conf_threshold); weaker ones only continue candidates.
        stillness: fed every frame, it dates an item revealed behind another from its pixels; without
            one (replaying detections alone) every item is dated from when it was first named.
    """

    category = Category.OCCUPATION

    def __init__(
        self,
        point: Point,
        settings: OccupationRuleSettings | None = None,
        start_confidence: float = 0.0,
        stillness: StillnessMap | None = None,
    ):
        self.point_id = point.id
        self.dwell_s = point.dwell_seconds
        self.settings = settings or OccupationRuleSettings()
        self.start_confidence = start_confidence
        self.stillness = stillness
        self._zones: list[ZoneTester] = zone_testers(point.zones, ZONE_KINDS_FOR[Category.OCCUPATION])
        self._state: dict[str, _ZoneState] = {}
        self._to_stillness = (1.0, 1.0)  # from the main stream's pixels to those the stillness map is fed

    def update(self, frame: Frame, detections: sv.Detections) -> list[ViolationEvent]:
        """Feed one frame's (tracked) detections; returns the events whose dwell time was crossed."""
        if not self._zones:
            return []
        if self.stillness is not None:
            # the image the detector saw (a sub-stream's, where the camera has one): already decoded, where the
            # main stream's would cost a decode a frame; boxes are carried to its pixels in _revealed_since
            self.stillness.update(frame.detect_image(), frame.captured_at)
            self._to_stillness = inverse(frame.detect_scale())
        cols = Columns.of(detections)
        subtypes = np.array([occupation_subtype(n) or "" for n in cols.names], dtype=object)
        events = []
        for zone in self._zones:
            idx = np.flatnonzero(zone.contains(cols.xyxy) & (subtypes != ""))
            state = self._state.get(zone.id)
            if state is None:
                if not len(idx):
                    continue
                state = self._state[zone.id] = _ZoneState()
            confident = cols.confidence[idx] >= self.start_confidence
            events += self._step(state, zone, _InZone(frame, cols, subtypes, idx, confident))
            if not state.candidates and not state.episode_seen_at:
                del self._state[zone.id]
        return events

    def _step(self, state: _ZoneState, zone: ZoneTester, here: _InZone) -> list[ViolationEvent]:
        """One frame in one zone: follow the candidates, forget the gone, start the new, report the due."""
        anchors = np.array([c.anchor for c in state.candidates]).reshape(-1, 4)
        allowed = self._may_continue(state.candidates, here)
        pairs = match_by_iou(anchors, here.boxes, self.settings.stationary_iou, allowed)
        self._age(state.candidates, anchors, {ci for ci, _ in pairs}, here)
        seen = self._see(state, pairs, here)
        _undo_unrevealed(seen)
        self._forget(state, here.now)
        known = self._known(state.candidates, anchors, allowed, here)
        self._start(state, here, known | np.isin(np.arange(len(here.idx)), [di for _, di in pairs]))
        return self._report(state, zone, self._due(seen, here.now), here)

    def _may_continue(self, candidates: list[_Candidate], here: _InZone) -> np.ndarray:
        """Which detection may continue which candidate (candidates x detections), overlap aside: one of
        the subtype the candidate may continue as, and confident unless the candidate is confirmed."""
        s = self.settings
        return np.array(
            [
                [
                    c.continues_as(here.now, s) in (None, here.subtypes[i])
                    and (conf or c.frames_confident >= s.confirm_frames)
                    for i, conf in zip(here.idx, here.confident, strict=True)
                ]
                for c in candidates
            ],
            dtype=bool,
        ).reshape(len(candidates), len(here.idx))

    def _age(self, candidates: list[_Candidate], anchors: np.ndarray, matched: set[int], here: _InZone) -> None:
        """The frame counts towards each candidate's life, unless it is a confirmed item that went unseen
        while a vehicle covered its spot: then it was hidden, not gone."""
        s = self.settings
        vehicles = here.cols.xyxy[np.isin(here.cols.names, list(HIDING_CLASSES))]
        for ci, (c, hidden) in enumerate(zip(candidates, _covered(anchors, vehicles, s.hidden_share), strict=True)):
            if hidden and ci not in matched and c.frames_confident >= s.confirm_frames:
                c.last_hidden_at = here.now
            else:
                c.frames_alive += 1

    def _see(self, state: _ZoneState, pairs: list[tuple[int, int]], here: _InZone) -> list[_Candidate]:
        """Candidates seen again (candidate, detection pairs): their counts, last sighting and subtype
        votes, and their episode kept going; returns them in the order of `pairs`."""
        seen = []
        for ci, di in pairs:
            c, i = state.candidates[ci], int(here.idx[di])
            c.frames_seen += 1
            c.frames_confident += int(here.confident[di])
            c.last_seen_at = here.now
            c.votes[here.subtypes[i]] = c.votes.get(here.subtypes[i], 0.0) + float(here.cols.confidence[i])
            if c.reported_as is not None:
                state.episode_seen_at[c.reported_as] = here.now
            seen.append(c)
        return seen

    def _forget(self, state: _ZoneState, now: datetime) -> None:
        """Candidates unseen beyond their allowance are gone; episodes idle for cooldown_s are over."""
        s = self.settings
        state.candidates = [c for c in state.candidates if c.survives(now, s)]
        state.episode_seen_at = {
            k: t for k, t in state.episode_seen_at.items() if (now - t).total_seconds() < s.cooldown_s
        }

    def _known(
        self, candidates: list[_Candidate], anchors: np.ndarray, allowed: np.ndarray, here: _InZone
    ) -> np.ndarray:
        """Which detections are of items already followed though they matched none: a second box on an
        item (the detector split a pile in two), or one where a part of an item was seen."""
        s = self.settings
        known = np.zeros(len(here.idx), dtype=bool)
        if len(anchors) and len(here.idx):
            known = ((sv.box_iou_batch(anchors, here.boxes) >= s.stationary_iou) & allowed).any(axis=0)
        return known | _on_parts(candidates, here.boxes, s.stationary_iou)

    def _start(self, state: _ZoneState, here: _InZone, followed: np.ndarray) -> None:
        """Confident detections of no followed item start candidates, or become parts of an item that
        arrived with them; larger boxes first, so that a pile is followed before a box lying on it is judged."""
        for di in np.argsort(-_area(here.boxes), kind="stable"):
            i = int(here.idx[di])
            if followed[di] or not here.confident[di]:
                continue
            box = here.cols.xyxy[i]
            host = _arrived_under(state.candidates, box, here.subtypes[i], here.now, self.settings)
            if host is not None:
                host.parts.append(box.copy())
                continue
            first = KeyFrame("first_seen", here.frame, [here.cols.object(i)])
            votes = {here.subtypes[i]: float(here.cols.confidence[i])}
            started, in_front = self._revealed_since(state.candidates, box, here.now)
            state.candidates.append(_Candidate(box.copy(), first, started, here.now, votes, in_front))

    def _due(self, seen: list[_Candidate], now: datetime) -> list[_Candidate]:
        """Unreported items seen now that have stood the dwell time, were seen often enough and, if dated
        from their pixels, confirmed; earliest put out first."""
        s = self.settings
        return sorted(
            (
                c
                for c in seen
                if c.reported_as is None
                and (now - c.started_at).total_seconds() >= self.dwell_s
                and c.seen_fraction >= s.min_seen_fraction
                and (not c.in_front or c.frames_confident >= s.confirm_frames)
            ),
            key=lambda c: c.started_at,
        )

    def _report(
        self, state: _ZoneState, zone: ZoneTester, due: list[_Candidate], here: _InZone
    ) -> list[ViolationEvent]:
        """Due items join their episode: an event for the first of a (zone, subtype) episode only."""
        events = []
        for item in due:
            same = self._reported_at(state, item) if self.settings.relabelled_joins else None
            if same is not None:
                item.reported_as = same.reported_as
                state.episode_seen_at[same.reported_as] = here.now
                continue
            subtype = item.subtype
            item.reported_as = subtype
            # An item of a subtype whose episode is still going on joins that episode: one event per
            # (zone, subtype) episode, however many chairs are put out.
            if subtype not in state.episode_seen_at:
                events.append(self._event(item, subtype, zone, here))
            state.episode_seen_at[subtype] = here.now
        return events

    def _revealed_since(
        self, candidates: list[_Candidate], box: np.ndarray, now: datetime
    ) -> tuple[datetime, list[_Candidate]]:
        """When an item first named now at `box` was put there, and the items it stood behind (none: now)."""
        s = self.settings
        in_front = _in_front(candidates, box, now, s.behind_share) if self.stillness is not None else []
        if not in_front:
            return now, []
        assert self.stillness is not None
        fx, fy = self._to_stillness
        since = self.stillness.changed_since(
            (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy),
            after=max(c.started_at for c in in_front),
            share=s.revealed_share,
        )
        # Revealed means it showed while the item in front stood, for longer than a new look takes to
        # count: what took its look as that item left came with or after its leaving.
        shown_by = max(c.last_seen_at for c in in_front) - timedelta(seconds=self.stillness.settle_s)
        if since is None or since > shown_by:
            return now, []
        return since, in_front

    def _reported_at(self, state: _ZoneState, item: _Candidate) -> _Candidate | None:
        """A reported item, still standing, whose box overlaps `item`'s by stationary_iou."""
        reported = [c for c in state.candidates if c.reported_as is not None and c is not item]
        if not reported:
            return None
        iou = sv.box_iou_batch(item.anchor[None], np.array([c.anchor for c in reported]))[0]
        best = int(np.argmax(iou))
        return reported[best] if iou[best] >= self.settings.stationary_iou else None

    def _event(self, item: _Candidate, subtype: str, zone: ZoneTester, here: _InZone) -> ViolationEvent:
        now, frame = here.now, here.frame
        objects = [here.cols.object(int(i)) for i in here.idx if here.subtypes[int(i)] == subtype] or [
            ObjectSeen(tuple(float(v) for v in item.anchor), subtype, 0.0)
        ]
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
                "subtype_votes": {k: round(v, 3) for k, v in sorted(item.votes.items())},
                "stationary_iou": self.settings.stationary_iou,
                **({"named_at": item.named_at.isoformat(), "dated_from": "pixels"} if item.in_front else {}),
            },
        )

    def flush(self, at: datetime) -> list[ViolationEvent]:
        """End of stream: nothing more is due (an item only triggers when seen after its dwell time, and
        no frame after the last one shows it); forget all candidates and episodes."""
        self._state.clear()
        return []
