"""At most as many detector calls at once as the cores can run.

Every point's worker calls the one shared detector from its own thread. More calls at once than the cores can
take make nothing faster, and each call in flight holds its own working memory in ONNX Runtime's arena, which
keeps what it grew to: 76 points calling at once held about 2.5 GB. `SlotLimitedDetector` lets `slots` calls
run and the other workers wait their turn; their tracking, rules and evidence go on meanwhile.

>>> import supervision as sv
>>> class Still:
...     def detect(self, image): return sv.Detections.empty()
>>> limited = SlotLimitedDetector(Still(), slots=2)
>>> len(limited.detect(None)), limited.slots
(0, 2)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import supervision as sv


def slots_for(threads: int) -> int:
    """Calls at once that keep every core busy: the cores over each call's threads (0: the runtime takes all
    cores for one call, so one call at a time)."""
    cores = os.cpu_count() or 1
    return 1 if threads == 0 else max(1, cores // threads)


class SlotLimitedDetector:
    """A detector of which at most `slots` calls run at once (the others wait); everything else passes through."""

    def __init__(self, detector, slots: int):
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.detector = detector
        self.slots = slots
        self._slots = threading.BoundedSemaphore(slots)

    def detect(self, image, **options) -> sv.Detections:
        """The detector's answer; `options` (a staged detector's `crops_from`) pass through."""
        with self._slots:
            return self.detector.detect(image, **options)

    def detect_regions(self, image, rects: Sequence[tuple[int, int, int, int]], **options) -> sv.Detections:
        with self._slots:
            return self.detector.detect_regions(image, rects, **options)

    def __getattr__(self, name: str):
        return getattr(self.detector, name)
