"""The motion gate: run the detector only on frames where something moved, or when a standing item is due
for a look.

Most frames of a fixed street camera repeat the one before; running the detector on them costs its full
price and changes nothing. `MotionDetector` compares a small blurred grey copy of each frame with a
running-average background (Frigate's approach, adapted), which costs a thumbnail's worth of work.
`MotionGate` decides per frame: detect when there is motion, or when the items last found have not
been looked at for `recheck_s`; otherwise the worker carries the last detections over. Unlike an NVR's,
this gate never forgets a standing item: a stall that stands still IS the violation, so its detections
keep reaching the tracker and the rules every frame and its dwell keeps counting.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> gate = MotionGate(MotionSettings(recheck_s=2.0))
>>> street = np.full((360, 640, 3), 90, np.uint8)
>>> gate.should_detect(street, t0, tracking=False)  # the first frame: nothing known yet
True
>>> gate.should_detect(street, t0 + timedelta(seconds=0.2), tracking=True)  # nothing moved, items just seen
False
>>> gate.should_detect(street, t0 + timedelta(seconds=2.0), tracking=True)  # the items are due for a look
True
>>> gate.should_detect(street, t0 + timedelta(seconds=2.2), tracking=False)  # nothing moved, nothing followed
False
>>> walker = street.copy(); walker[100:200, 300:340] = 200
>>> gate.should_detect(walker, t0 + timedelta(seconds=2.4), tracking=False)
True
"""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class MotionSettings(BaseModel):
    """The `motion:` section: when the detector may skip a frame (pipeline.motion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=False,
        description="Skip the detector on frames without motion, carrying the last detections over. False: "
        "every frame taken at the point's detect rate is detected (the default until the gate's event recall "
        "on held-out scenarios is measured against detecting every frame).",
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
        description="While items are being followed, the detector looks again at least this often even "
        "without motion, so a standing item's detections stay current (and a flicker miss is corrected).",
    )


class MotionDetector:
    """Whether a frame differs from the recent background by a region of at least `min_area`.

    >>> md = MotionDetector(MotionSettings())
    >>> still = np.zeros((90, 160, 3), np.uint8)
    >>> md.update(still), md.update(still)
    (True, False)
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

    def update(self, image: np.ndarray) -> bool:
        """Feed one frame (BGR or grey); True when it shows motion. The first frame, and a frame of another
        size than the background's (the camera changed its stream), count as motion."""
        grey = self._grey(image)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            return True
        moved = cv2.absdiff(grey, self._background) > self.settings.threshold
        cv2.accumulateWeighted(grey, self._background, self.settings.background_alpha)
        if not moved.any():
            return False
        # Dilate before measuring so one person's scattered changed pixels count as one region.
        mask = cv2.dilate(moved.astype(np.uint8), self._kernel)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if len(stats) > 1 else 0
        return largest >= self.settings.min_area * grey.size


class MotionGate:
    """Per point: decides whether a frame goes to the detector (`should_detect`)."""

    def __init__(self, settings: MotionSettings):
        self.settings = settings
        self.motion = MotionDetector(settings)
        self._last_detect: datetime | None = None

    def should_detect(self, image: np.ndarray, at: datetime, tracking: bool) -> bool:
        """True when the frame captured `at` must be detected: it shows motion, or `tracking` (the last
        detections hold items) and they were last looked at `recheck_s` or longer ago. Every frame is fed
        to the background, detected or not. A True answer counts as the detection at `at`."""
        moved = self.motion.update(image)
        due = (
            tracking
            and self._last_detect is not None
            and (at - self._last_detect).total_seconds() >= self.settings.recheck_s
        )
        if moved or due or self._last_detect is None:
            self._last_detect = at
            return True
        return False
