"""Since when each part of a fixed camera's view has looked as it does now.

A detector names what it sees frame by frame; it cannot say how long the pixels of a box have been
there. When an item stood half hidden behind another (a stack of crates behind a stool, which the
detector boxed with the stool as one chair), the detector only names it once the item in front leaves,
but its visible part has been in view, unchanged, all along. `StillnessMap` keeps that history cheaply:
per cell of a reduced view, the look it settled on and when it took that look.

A cell's look changes when it differs from its settled value by more than `tolerance` (the largest
difference over the three colour channels, 0-255) and the new value holds, within `tolerance`, for
`settle_s`: a passer-by crossing it does not change it, goods put down do, dated from the frame they
first showed in. A cell remembers the `memory` looks it had before: going back to one of them (a
passer-by who stood a while walks on, a pile is taken away and the pavement shows again) restores when
that look began, so only a look new to the cell is a change. A cell that differs from its settled look
right now counts as changed now.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> still = StillnessMap(tolerance=24, settle_s=2.0)
>>> grey = np.full((40, 80, 3), 120, np.uint8)
>>> crate = grey.copy(); crate[10:30, 10:30] = (200, 60, 20)
>>> for k in range(20):  # 1 fps: the crate is put down at 5 s
...     still.update(crate if k >= 5 else grey, t0 + timedelta(seconds=k))
>>> (still.changed_since((10, 10, 30, 30), after=t0) - t0).total_seconds()
5.0
>>> still.changed_since((10, 10, 30, 30), after=t0 + timedelta(seconds=6)) is None
True
>>> for k in range(20, 30):  # taken away at 20 s: the pavement shows as it has since the start
...     still.update(grey, t0 + timedelta(seconds=k))
>>> still.changed_since((10, 10, 30, 30), after=t0) is None
True
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import cv2
import numpy as np

Box = tuple[float, float, float, float]


class StillnessMap:
    """Per cell of a reduced view of one camera: the settled look and since when it has held.

    Args:
        tolerance: a cell differs from its settled look when a colour channel is off by more than this.
        settle_s: a new look must hold this long to become the settled one (longer than a passer-by
            stays on one spot; shorter than anything worth timing).
        max_side: the view is reduced by a whole factor so that its longer side is at most this many
            cells (the cost per frame is then that of a thumbnail, whatever the camera's resolution).
        memory: how many earlier looks each cell remembers, to tell a return to one from a change.
    """

    def __init__(self, tolerance: int = 24, settle_s: float = 3.0, max_side: int = 320, memory: int = 4):
        if not 0 < tolerance < 255:
            raise ValueError("tolerance must be within 1-254")
        if settle_s < 0 or max_side < 8 or not 0 <= memory <= 16:
            raise ValueError("settle_s must be >= 0, max_side >= 8 and memory within 0-16")
        self.tolerance = tolerance
        self.settle_s = settle_s
        self.max_side = max_side
        self.memory = memory
        self._factor = 0
        self._t0: datetime | None = None
        self._now = 0.0
        # Level 0 is each cell's settled look, levels 1.. the looks it had before, latest first.
        self._looks = np.empty(0, np.uint8)  # (1 + memory, H, W, 3)
        self._since = np.empty(0)  # (1 + memory, H, W): seconds after t0 when each look began
        self._known = np.empty(0, dtype=bool)  # (1 + memory, H, W): the level holds a look
        self._candidate = np.empty(0, np.uint8)  # (H, W, 3): the new look a differing cell shows
        self._candidate_since = np.empty(0)  # (H, W): since when it shows it (where pending)
        self._pending = np.empty(0, dtype=bool)  # (H, W): differs from its settled look right now

    def update(self, image: np.ndarray, at: datetime) -> None:
        """Feed one BGR frame captured at `at` (frames in capture order; all of one size)."""
        if self._t0 is None:
            self._t0 = at
            self._factor = max(1, math.ceil(max(image.shape[:2]) / self.max_side))
        now = (at - self._t0).total_seconds()
        if now < self._now:
            raise ValueError("frames must come in capture order")
        f = self._factor
        h, w = image.shape[0] // f, image.shape[1] // f
        view = cv2.resize(image[: h * f, : w * f], (w, h), interpolation=cv2.INTER_AREA)
        if not self._looks.size:
            levels = 1 + self.memory
            self._looks = np.repeat(view[None], levels, axis=0)
            self._since = np.full((levels, h, w), now)
            self._known = np.zeros((levels, h, w), dtype=bool)
            self._known[0] = True
            self._candidate, self._candidate_since = view.copy(), np.full((h, w), now)
            self._pending = np.zeros((h, w), dtype=bool)
        elif self._looks.shape[1:] != view.shape:
            raise ValueError(f"frame size changed to {image.shape[1]}x{image.shape[0]}")
        self._now = now
        differs = self._off(view, self._looks[0])
        # A differing cell starts a new candidate look unless it still shows the one it showed before.
        fresh = differs & ~(self._pending & ~self._off(view, self._candidate))
        np.copyto(self._candidate, view, where=fresh[..., None])
        np.copyto(self._candidate_since, now, where=fresh)
        settled = differs & (now - self._candidate_since >= self.settle_s)
        if settled.any():
            self._settle(settled)
        self._pending = differs & ~settled

    def _settle(self, cells: np.ndarray) -> None:
        """The candidate look of `cells` becomes their settled look: an earlier look they return to keeps
        the time it began; the looks before move down a level (the oldest is forgotten)."""
        ys, xs = np.nonzero(cells)  # few cells settle at once: work on those alone
        n, levels = len(ys), len(self._looks)
        looks, since, known = self._looks[:, ys, xs], self._since[:, ys, xs], self._known[:, ys, xs]
        candidate = self._candidate[ys, xs].astype(np.int16)
        same = np.abs(looks[1:].astype(np.int16) - candidate).max(axis=2) <= self.tolerance
        same &= known[1:]
        returns = same.any(axis=0)
        latest = same.argmax(axis=0) if levels > 1 else np.zeros(n, dtype=np.intp)  # the latest match wins
        level = np.where(returns, latest + 1, levels - 1)
        cols = np.arange(n)
        look = np.where(returns[:, None], looks[level, cols], candidate.astype(np.uint8))
        began = np.where(returns, since[level, cols], self._candidate_since[ys, xs])
        # Level j takes level j-1 from the top down to the level returned to (or the oldest).
        j = np.arange(levels)[:, None]
        src = np.where((j >= 1) & (j <= level), j - 1, j)
        looks, since, known = looks[src, cols], since[src, cols], known[src, cols]
        looks[0], since[0], known[0] = look, began, True
        self._looks[:, ys, xs], self._since[:, ys, xs], self._known[:, ys, xs] = looks, since, known

    def _off(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cells where a colour channel of `a` and `b` differs by more than the tolerance."""
        d = cv2.absdiff(a, b)
        return np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2]) > self.tolerance

    def changed_since(self, box: Box, after: datetime, share: float = 0.5) -> datetime | None:
        """When the look of `box` (frame pixels, x1 y1 x2 y2) changed after `after`, or None if it did not.

        Of the box's cells, those that took their present look after `after` must be at least `share` of
        the box (else what shows there is mostly what already showed at `after`); the answer is the time
        by which `share` of those had taken it. None before the first frame."""
        if not self._looks.size or self._t0 is None:
            return None
        f = self._factor
        x1, y1 = (max(0, int(v // f)) for v in box[:2])
        x2, y2 = (int(math.ceil(v / f)) for v in box[2:])
        since = np.where(self._pending[y1:y2, x1:x2], self._now, self._since[0, y1:y2, x1:x2]).ravel()
        if not since.size:
            return None
        changed = np.sort(since[since > (after - self._t0).total_seconds()])
        if len(changed) < share * since.size:
            return None
        return self._t0 + timedelta(seconds=float(changed[max(0, math.ceil(share * len(changed)) - 1)]))
