"""One owner per point: ring buffer -> detector -> tracker -> rules -> plate -> evidence -> case.

A `PointWorker` sees every frame of its point in order, so all per-point state (tracks, dwell timers,
the pre-roll buffer) lives here without locks. Events wait until their post-roll has been seen, then
become evidence and, if the point and category may raise cases (legal requirements 1 and 2), a case;
otherwise they are logged as advisory. A frame that cannot be judged (stamped before the last one or
ahead of the clock, undecodable or too large to decode) is dropped, counted and logged, and the point
goes on with the next: no single frame can stop a camera being analysed.

>>> buf = RingBuffer(seconds=1.0)
>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> for i in range(15):
...     buf.add(Frame("P1", i, t0 + timedelta(seconds=i * 0.2), b""))
>>> [f.seq for f in buf.between(t0 + timedelta(seconds=2.2), t0 + timedelta(seconds=2.6))]
[11, 12, 13]
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import supervision as sv

from cases.store import EvidenceSettings
from feixian.domain import Category, Point
from pipeline.bus import FrameBus
from pipeline.crop_stages import CropsFrom
from pipeline.events import KeyFrame, ViolationEvent
from pipeline.evidence import EvidenceBuilder, EvidenceBundle
from pipeline.frames import FpsSampler, Frame, FrameDecodeError, FrameLimits, decode_jpeg, encode_jpeg
from pipeline.motion import MotionGate
from pipeline.plates import PlateReader
from pipeline.stream_scale import scaled

log = logging.getLogger(__name__)

# A truck passage longer than this is clipped to its last part in the evidence video.
MAX_PASSAGE_S = 60.0


class Rule(Protocol):
    def update(self, frame: Frame, detections: sv.Detections) -> list[ViolationEvent]: ...

    def flush(self, at: datetime) -> list[ViolationEvent]: ...


class Detector(Protocol):
    def detect(self, image, **options) -> sv.Detections: ...

    def detect_regions(self, image, rects: Sequence[tuple[int, int, int, int]], **options) -> sv.Detections: ...


class Tracker(Protocol):
    def update(self, detections: sv.Detections, at: datetime) -> sv.Detections: ...


class RingBuffer:
    """Recent frames of one point, oldest first, kept for `seconds` of capture time."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._frames: deque[Frame] = deque()

    def add(self, frame: Frame) -> None:
        self._frames.append(frame)
        horizon = frame.captured_at - timedelta(seconds=self.seconds)
        while self._frames and self._frames[0].captured_at < horizon:
            self._frames.popleft()

    def between(self, start: datetime, end: datetime) -> list[Frame]:
        return [f for f in self._frames if start <= f.captured_at <= end]

    def __len__(self) -> int:
        return len(self._frames)


@dataclass
class WorkerStats:
    frames: int = 0
    skipped: int = 0  # closer to the previous frame than the detect rate asks for
    out_of_order: int = 0  # captured before the previous frame
    future: int = 0  # captured further ahead of the clock than FrameLimits.max_ahead
    undecodable: int = 0  # not a JPEG, or declaring more pixels than FrameLimits.max_pixels
    gated: int = 0  # taken for analysis, but the motion gate let the last detections stand for the detector's
    regions: int = 0  # detected only around what moved (pipeline.regions), the other last boxes carried over
    detections: int = 0
    events: int = 0
    cases: int = 0
    advisory: int = 0
    by_category: dict[str, int] = field(default_factory=dict)


@dataclass(eq=False)
class _Pending:
    event: ViolationEvent
    clip_start: datetime
    clip_end: datetime


CaseSink = Callable[[ViolationEvent, EvidenceBundle], None]


def may_raise_case(event: ViolationEvent, point: Point, published: Collection[Category]) -> tuple[bool, str]:
    """Whether `event` may open a case (its category published, the point announced and calibrated), and
    why not; an event that may not is logged as advisory only."""
    if event.category not in published:
        return False, f"category {event.category.value} not on the published list"
    return point.may_raise_cases(event.category, event.triggered_at.date())


class PointWorker:
    """Runs one point's frames through detection, tracking and the rules, and files the events."""

    def __init__(
        self,
        point: Point,
        detector: Detector,
        tracker: Tracker,
        rules: Sequence[Rule],
        evidence: EvidenceBuilder,
        open_case: CaseSink,
        evidence_settings: EvidenceSettings,
        published_categories: Sequence[Category],
        plate_reader: PlateReader | None = None,
        limits: FrameLimits | None = None,
        gate: MotionGate | None = None,
    ):
        self.point = point
        self.detector = detector
        self.tracker = tracker
        self.rules = list(rules)
        self.evidence = evidence
        self.open_case = open_case
        self.pre_roll = timedelta(seconds=evidence_settings.pre_roll_s)
        self.post_roll = timedelta(seconds=evidence_settings.post_roll_s)
        self.published = set(published_categories)
        self.plate_reader = plate_reader
        self.limits = limits or FrameLimits(max_ahead=None)
        self.gate = gate
        # The detector's last answer, which a frame the gate lets through undetected carries over.
        self._found: sv.Detections | None = None
        self.buffer = RingBuffer(evidence_settings.pre_roll_s + MAX_PASSAGE_S + evidence_settings.post_roll_s)
        self.stats = WorkerStats()
        self._pending: list[_Pending] = []
        self._last_at: datetime | None = None
        self.last_turn = time.monotonic()
        # The point's rate on a grid (a 5 fps camera at 2 fps gives frames 0.6 and 0.4 s apart: both are taken).
        self._rate = FpsSampler(point.detect_fps)
        self._epoch: datetime | None = None
        # Seconds each detector call took; the composition root points it at the ops metrics (feixian.metrics).
        self.on_detector_seconds: Callable[[float], None] = lambda seconds: None

    @property
    def last_frame_at(self) -> datetime | None:
        """Capture time of the last frame taken for analysis (ops: when the point last delivered)."""
        return self._last_at

    def process(self, frame: Frame) -> None:
        if frame.point_id != self.point.id:
            raise ValueError(f"worker for {self.point.id} got a frame of {frame.point_id}")
        refusal = self._refusal(frame)
        if refusal is not None:
            self._drop(frame, *refusal)
            return
        t = 0.0 if self._epoch is None else (frame.captured_at - self._epoch).total_seconds()
        if not self._rate.due(t):
            # Frames beyond the detect rate cost CPU and change nothing.
            self.stats.skipped += 1
            return
        try:
            image = frame.detect_image(self.limits.max_pixels)
            to_main = frame.detect_scale()
        except FrameDecodeError as e:
            self._drop(frame, "undecodable", str(e))
            return
        if self._epoch is None:
            self._epoch = frame.captured_at
        self._rate.take(t)
        # Set only once a frame is taken: a frame stamped far ahead never becomes the point's "last" time,
        # so it cannot make every later, correctly stamped frame look out of order.
        self._last_at = frame.captured_at
        # Found on the detect image (a sub-stream's, where the camera has one), followed and judged in the main
        # stream's pixels, which the zones and the evidence are in.
        found = scaled(self._detect(image, frame.captured_at, self._crops(frame)), to_main)
        detections = self.tracker.update(found, frame.captured_at)
        self.stats.frames += 1
        self.stats.detections += len(detections)
        events = [e for rule in self.rules for e in rule.update(frame, detections)]
        frame.release_image()
        self.buffer.add(frame)
        self._queue(events)
        self._file_due(frame.captured_at)

    def _detect(self, image, at: datetime, options: dict[str, CropsFrom]) -> sv.Detections:
        """The detector's answer for this frame, in `image`'s pixels. With the motion gate it looks only where
        the gate plans: the last boxes clear of that are carried over (the tracker and the rules still see them,
        so standing items stay followed and their dwell counts), and a frame where nothing moved carries them
        all."""
        plan = None
        if self.gate is not None:
            last = self._found.xyxy if self._found is not None else np.zeros((0, 4), np.float32)
            plan = self.gate.plan(image, at, last)
            if plan is None and self._found is not None:
                self.stats.gated += 1
                return self._found
        started = time.perf_counter()
        if plan is None or plan.is_whole or self._found is None:
            self._found = self.detector.detect(image, **options)
        else:
            carried = self._found[plan.carried(self._found.xyxy)]
            self._found = sv.Detections.merge([carried, self.detector.detect_regions(image, plan.rects, **options)])
            self.stats.regions += 1
        self.on_detector_seconds(time.perf_counter() - started)
        return self._found

    def _crops(self, frame: Frame) -> dict[str, CropsFrom]:
        """The detector's options for `frame`: the second looks of a staged detector (`pipeline.crop_stages`)
        crop a sub-stream frame's boxes from its main stream, at the resolution they were trained on; the main
        JPEG is decoded only if a box asks for it. A detector without second looks takes no options."""
        if frame.detect_jpeg is None or not getattr(self.detector, "stages", ()):
            return {}
        return {"crops_from": lambda: frame.image(self.limits.max_pixels)}

    def _refusal(self, frame: Frame) -> tuple[str, str] | None:
        ahead = self.limits.ahead_of_clock(frame.captured_at)
        if ahead is not None:
            return "future", f"{ahead.total_seconds():.0f} s beyond the allowed clock skew"
        if self._last_at is not None and frame.captured_at < self._last_at:
            return "out_of_order", f"before the previous frame at {self._last_at.isoformat()}"
        return None

    def _drop(self, frame: Frame, reason: str, detail: str) -> None:
        count = getattr(self.stats, reason) + 1
        setattr(self.stats, reason, count)
        # Logged the 1st, 2nd, 4th, 8th... time per reason, so a source stuck on bad frames cannot flood the
        # log; the stats (and /readyz) keep the exact counts.
        if count & (count - 1) == 0:
            log.warning(
                "point %s: frame %s at %s dropped (%s, %d so far): %s",
                self.point.id,
                frame.seq,
                frame.captured_at.isoformat(),
                reason,
                count,
                detail,
            )

    def flush(self) -> None:
        """End of stream: close open episodes and file everything pending with the frames we have."""
        if self._last_at is not None:
            self._queue([e for rule in self.rules for e in rule.flush(self._last_at)])
        self._file_due(None)

    def run(self, bus: FrameBus, idle_timeout: float = 0.5) -> None:
        """Consume the point's frames until the bus closes the point and it is drained, then flush.

        `last_turn` (monotonic) is when the loop last came round: at least every `idle_timeout` while idle,
        so a loop that has not come round for much longer is held by one frame (readiness reports it)."""
        while True:
            self.last_turn = time.monotonic()
            frame = bus.consume(self.point.id, timeout=idle_timeout)
            if frame is not None:
                try:
                    self.process(frame)
                except Exception:  # keep the point alive; the frame is lost, the next one is processed
                    log.exception("point %s: frame %s failed", self.point.id, frame.seq)
            elif bus.is_drained(self.point.id):
                break
        self.flush()

    def _queue(self, events: list[ViolationEvent]) -> None:
        for event in events:
            self._show_start(event)
            self.stats.events += 1
            if event.category == Category.VEHICLE:
                start, end = event.started_at, event.ended_at or event.triggered_at
            else:
                start = end = event.triggered_at
            self._pending.append(_Pending(event, start - self.pre_roll, end + self.post_roll))

    def _show_start(self, event: ViolationEvent) -> None:
        """An item dated from its pixels (revealed behind another, pipeline.rules.occupation) was put down
        before the detector named it: its evidence also shows the frame it stood since, while the buffer
        holds it, with the box it was named in."""
        if event.details.get("dated_from") != "pixels":
            return
        named = event.keyframes[0]
        shown = self.buffer.between(event.started_at, named.frame.captured_at)
        # The named frame itself is no earlier view: key frames are at distinct times (cases.timeline).
        if shown and shown[0].captured_at < named.frame.captured_at:
            event.keyframes.insert(0, KeyFrame("stood_since", shown[0], named.objects))

    def _file_due(self, now: datetime | None) -> None:
        due = [p for p in self._pending if now is None or p.clip_end <= now]
        self._pending = [p for p in self._pending if p not in due]
        for p in due:
            self._file(p)

    def _file(self, pending: _Pending) -> None:
        event = pending.event
        allowed, reason = may_raise_case(event, self.point, self.published)
        key = event.category.value
        self.stats.by_category[key] = self.stats.by_category.get(key, 0) + 1
        if not allowed:
            self.stats.advisory += 1
            log.info(
                "advisory event (no case): point=%s category=%s subtype=%s at=%s reason=%s",
                event.point_id,
                event.category.value,
                event.subtype,
                event.triggered_at.isoformat(),
                reason,
            )
            return
        if self.plate_reader is not None and event.plate_views and event.plate is None:
            self._read_plate(event)
        frames = self.buffer.between(pending.clip_start, pending.clip_end)
        bundle = self.evidence.build(event, self.point, frames, self.point.detect_fps)
        self.open_case(event, bundle)
        self.stats.cases += 1

    def _read_plate(self, event: ViolationEvent) -> None:
        """Name the party: the plate the event's views agree on, kept with how sure the reading is."""
        assert self.plate_reader is not None
        # Decoded here and dropped after: the frames stay in the ring buffer as JPEG only.
        views = [(decode_jpeg(v.frame.jpeg), v.objects[0].box) for v in event.plate_views]
        found = self.plate_reader.read_views(views)
        if found is None:
            event.details["plate"] = {"text": None, "views_read": len(views)}
            return
        read, agreeing = found
        event.plate = read.text
        event.plate_crop = encode_jpeg(read.crop, quality=95)
        event.details["plate"] = {
            "text": read.text,
            "colour": read.colour,
            "confidence": round(read.confidence, 3),
            "views_read": len(views),
            "views_agreeing": agreeing,
            "reader": self.plate_reader.recognizer.version,
        }
