"""The motion gate: run the detector only where something moved, and on the whole frame when the standing items
are due for a look.

Most of a fixed street camera's frame repeats the one before; running the detector on it costs its full price
and changes nothing. `MotionDetector` compares a small blurred grey copy of each frame with a running-average
background (Frigate's approach, adapted), which costs a thumbnail's worth of work, and says where it differs.
`MotionGate.plan` decides per frame what the detector looks at: nothing (the worker carries the last
detections over), the regions around what moved, around the boxes it lately missed, around the boxes the frame's
border cuts (something entering or leaving the view) and, every `recheck_s`, around every followed item
(`pipeline.regions`; the last boxes clear of them are carried over), or the whole frame: the first one, one
where most of the view moved, and one every `whole_s`. Unlike an NVR's, this gate never forgets a standing item:
a stall that stands still IS the violation, so its detections keep reaching the tracker and the rules every
frame and its dwell keeps counting.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> gate = MotionGate(MotionSettings(recheck_s=2.0, whole_s=10.0))
>>> street = np.full((360, 640, 3), 90, np.uint8)
>>> nothing = np.zeros((0, 4), np.float32)
>>> gate.plan(street, t0, nothing).is_whole  # the first frame: nothing known yet
True
>>> stall = np.array([[300, 200, 340, 266]], np.float32)
>>> gate.plan(street, t0 + timedelta(seconds=0.2), stall) is None  # nothing moved, the stall just seen
True
>>> gate.plan(street, t0 + timedelta(seconds=2.0), stall).rects  # the stall is due for a look
[(256, 160, 384, 320)]
>>> walker = street.copy(); walker[100:200, 500:540] = 200
>>> gate.plan(walker, t0 + timedelta(seconds=2.2), stall).rects  # only around the passer-by
[(448, 32, 608, 256)]
>>> gate.plan(street, t0 + timedelta(seconds=10.0), stall).is_whole  # the whole view, every whole_s
True
"""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from pipeline.regions import RegionPlan, at_border


class MotionSettings(BaseModel):
    """The `motion:` section: when the detector may skip a frame (pipeline.motion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=False,
        description="Detect only where something moved (or whole frames when due), carrying the other last "
        "detections over. False: every frame taken at the point's detect rate is detected whole. The shipped "
        "settings turn it on (configs/default.yaml); `make bench` measures its event recall against detecting "
        "every frame.",
    )
    height: int = Field(
        default=100,
        ge=16,
        le=1080,
        description="Frames are compared as grey copies scaled to this height (px): small enough to cost "
        "little, large enough to see a 40x66 px item in a 640x360 frame as a few dozen pixels.",
    )
    threshold: int = Field(
        default=20,
        ge=1,
        le=254,
        description="A pixel moved when its grey level differs from the background by more than this "
        "(0-255); JPEG noise stays below it once blurred.",
    )
    min_area: float = Field(
        default=0.0005,
        gt=0,
        le=1,
        description="Share of the frame one connected region of moved pixels must cover to count as motion; "
        "smaller specks (noise, leaves) do not wake the detector.",
    )
    background_alpha: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Weight of each new frame in the running-average background. Lower: something put down "
        "keeps showing as motion for longer (about ln(threshold/contrast)/ln(1-alpha) frames), so the "
        "detector sees it settle.",
    )
    recheck_s: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="While items are being followed, the detector looks at them again (the regions around their "
        "boxes) at least this often even without motion, so a standing item's detections stay current.",
    )
    whole_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="The detector looks at the whole frame at least this often, moving or not: it finds what it "
        "missed while the item moved in and what never moved (the occupation rule dates an item from its pixels, "
        "so a late first look does not shorten its dwell).",
    )
    relook_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="A box the detector found and then missed is looked at again on every frame for this long, "
        "whether or not anything moved there: a weak item flickers, and one miss must not hide it until the "
        "next whole look.",
    )
    regions: bool = Field(
        default=True,
        description="On a frame with motion, look only at the regions around what moved (and at the last boxes "
        "they touch, whole); the other last boxes are carried over. False: any motion sends the whole frame.",
    )
    region_margin_px: int = Field(
        default=32,
        ge=0,
        le=512,
        description="Each moved region is widened by this many frame pixels on every side, so a moving object "
        "the thumbnail saw only in part (a uniform truck body) still lies whole inside it.",
    )
    max_region_share: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="When the regions cover more than this share of the frame, the whole frame is looked at "
        "instead: one call then costs about what the regions would, and a whole look resets the recheck clock.",
    )
    look_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="The gate is asked at most this often (its answer then stands as on any frame); every frame "
        "between is carried over whole, moving boxes as last found, as DeepStream's `interval` does. 0: every "
        "frame. It trades events for throughput: on `make bench`'s scenarios (5 fps) 1.0 s ran 3.2x the frames/s of "
        "looking whenever the gate says, 3.0 s 4.3x; on the held-out scenarios of seed 2001, 1.0 s lost 2 of 46 "
        "truck events and 2.0 s lost 5 (docs/experiments.md).",
    )


Box = tuple[float, float, float, float]


class MotionDetector:
    """Where a frame differs from the recent background, as boxes in frame pixels of regions of at least
    `min_area`.

    >>> md = MotionDetector(MotionSettings())
    >>> still = np.zeros((90, 160, 3), np.uint8)
    >>> md.update(still), md.update(still)
    ([(0.0, 0.0, 160.0, 90.0)], [])
    """

    def __init__(self, settings: MotionSettings):
        self.settings = settings
        self._background: np.ndarray | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def _grey(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        height = min(self.settings.height, h)
        width = max(1, round(w * height / h))
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (3, 3), 0).astype(np.float32)

    def update(self, image: np.ndarray) -> list[Box]:
        """Feed one frame (BGR or grey); the boxes of its moved regions (none: no motion). The first frame, and
        a frame of another size than the background's (the camera changed its stream), move as a whole."""
        h, w = image.shape[:2]
        grey = self._grey(image)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            return [(0.0, 0.0, float(w), float(h))]
        moved = cv2.absdiff(grey, self._background) > self.settings.threshold
        cv2.accumulateWeighted(grey, self._background, self.settings.background_alpha)
        if not moved.any():
            return []
        # Dilate before measuring so one person's scattered changed pixels count as one region.
        mask = cv2.dilate(moved.astype(np.uint8), self._kernel)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        sx, sy = w / grey.shape[1], h / grey.shape[0]
        least = self.settings.min_area * grey.size
        return [
            (float(x * sx), float(y * sy), float((x + bw) * sx), float((y + bh) * sy))
            for x, y, bw, bh, area in stats[1:]
            if area >= least
        ]


class MotionGate:
    """Per point: decides what of a frame goes to the detector (`plan`).

    Args:
        settings: the `motion:` section.
        stride: the detector's input grid (px); regions are snapped to it.
    """

    def __init__(self, settings: MotionSettings, stride: int = 32):
        self.settings = settings
        self.stride = stride
        self.motion = MotionDetector(settings)
        self._last_whole: datetime | None = None
        self._last_asked: datetime | None = None
        self._last_items: datetime | None = None  # when the followed items were last looked at, whole or in regions
        self._seen = np.zeros((0, 4), np.float32)  # boxes found lately, and when each was last found
        self._seen_at: list[datetime] = []

    def plan(self, image: np.ndarray, at: datetime, found: np.ndarray) -> RegionPlan | None:
        """What of the frame captured `at` the detector must look at, given the boxes it `found` last (N x 4):
        None for nothing, else a plan (whole or regions). Every frame is fed to the background, detected or not."""
        s = self.settings
        moving = self.motion.update(image)
        # A clock that went back (a camera's time corrected) makes the gate due, not silent until it catches up.
        if s.look_s and self._last_asked is not None and 0 <= (at - self._last_asked).total_seconds() < s.look_s:
            return None
        self._last_asked = at
        found = np.asarray(found, np.float32).reshape(-1, 4)
        missed = self._missed(found, at)
        frame = image.shape[:2]
        if self._last_whole is None or (at - self._last_whole).total_seconds() >= s.whole_s:
            return self._whole(frame, at)
        items_due = len(found) > 0 and (
            self._last_items is None or (at - self._last_items).total_seconds() >= s.recheck_s
        )
        # A box the frame's border cuts is never carried over: it shows something entering or leaving the view,
        # which can leave with too little of it in view to count as motion, so "nothing moved near it" does not
        # say it is still there. Carried, such boxes were ghosts: of the boxes the gate carried on the 12 scenarios
        # of seed 6001, detecting every frame found 9 of the 102 at the border against 89 % of the others; on seed
        # 2001 a person box carried at the border kept a track alive that took an entering truck, whose passage
        # lost its uncovered-truck event. Looked at again in every frame, such a box stands while it is found.
        border = found[at_border(found, frame)]
        seeds = [*moving, *map(tuple, missed), *map(tuple, border), *(map(tuple, found) if items_due else ())]
        if not seeds:
            return None
        if not s.regions:
            return self._whole(frame, at)
        plan = RegionPlan.around(seeds, found, frame, s.region_margin_px, self.stride)
        if plan.share > s.max_region_share:
            return self._whole(frame, at)
        if items_due:
            self._last_items = at
        return plan

    def _whole(self, frame: tuple[int, ...], at: datetime) -> RegionPlan:
        self._last_whole = self._last_items = at
        return RegionPlan.whole((frame[0], frame[1]))

    def _missed(self, found: np.ndarray, at: datetime) -> np.ndarray:
        """Boxes found within the last `relook_s` that `found` no longer holds; remembers `found` as seen `at`."""
        horizon = self.settings.relook_s
        keep = [k for k, t in enumerate(self._seen_at) if (at - t).total_seconds() <= horizon]
        seen, seen_at = self._seen[keep], [self._seen_at[k] for k in keep]
        if len(seen) and len(found):
            still = sv.box_iou_batch(seen, found).max(axis=1) >= 0.3
        else:
            still = np.zeros(len(seen), dtype=bool)
        missed = seen[~still]
        self._seen = np.concatenate([missed, found])
        self._seen_at = [t for t, s in zip(seen_at, still, strict=True) if not s] + [at] * len(found)
        return missed
