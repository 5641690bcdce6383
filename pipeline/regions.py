"""Which parts of a frame the detector must look at again, and which of its last boxes still stand.

On a street camera something moves in most frames, but seldom everywhere: a passer-by, a car on the road. A
`RegionPlan` covers what moved with a margin, and grows over every box the detector last found that such a
region touches, so an item a passer-by walks in front of is looked at again whole, never cut in two. The
regions are then merged until none overlaps another. Every last box is thus either wholly inside a region (the
detector looks again) or clear of all of them (nothing near it moved: it is carried over as it was).

>>> plan = RegionPlan.around(moving=[(300, 200, 340, 266)], found=[(330, 240, 400, 300), (10, 10, 50, 50)],
...                          frame=(360, 640), margin=16, stride=32)
>>> plan.rects
[(256, 160, 416, 320)]
>>> plan.carried([(330, 240, 400, 300), (10, 10, 50, 50)]).tolist()
[False, True]
>>> round(plan.share, 3)
0.111
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels, x2 and y2 exclusive

# A box this close to the frame's border is cut by it (the motion gate's test and the detector's data["at_edge"]).
BORDER_PX = 2.0


def at_border(boxes: Sequence[Sequence[float]] | np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """For each box (x1, y1, x2, y2): True when the border of a frame of size `frame` (height, width) cuts it.

    >>> at_border([(0, 40, 30, 120), (100, 100, 200, 200), (600, 300, 640, 360)], (360, 640)).tolist()
    [True, False, True]
    """
    h, w = frame
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return (b[:, :2].min(axis=1) <= BORDER_PX) | (b[:, 2] >= w - BORDER_PX) | (b[:, 3] >= h - BORDER_PX)


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass(frozen=True)
class RegionPlan:
    """Disjoint rectangles of a frame of size `frame` (height, width) that the detector looks at."""

    rects: list[Rect]
    frame: tuple[int, int]

    @classmethod
    def around(
        cls,
        moving: Sequence[Sequence[float]],
        found: Sequence[Sequence[float]],
        frame: tuple[int, int],
        margin: int,
        stride: int,
    ) -> RegionPlan:
        """Regions over the `moving` boxes widened by `margin`, grown over the `found` boxes they touch, merged
        until disjoint, and snapped outwards to multiples of `stride` (the network's input grid) inside the
        frame."""
        h, w = frame
        rects = [(b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin) for b in moving]
        boxes = [tuple(map(float, b)) for b in found]
        changed = True
        while changed:  # each pass grows or merges at least one rectangle, so this ends
            changed = False
            merged: list[tuple[float, float, float, float]] = []
            for r in rects:
                for i, m in enumerate(merged):
                    if _overlap(r, m):
                        merged[i], changed = _union(r, m), True
                        break
                else:
                    merged.append(r)
            rects = merged
            for i, r in enumerate(rects):
                for b in boxes:
                    if _overlap(r, b) and _union(r, b) != r:
                        r, changed = _union(r, b), True
                rects[i] = r
            if not changed:
                snapped = [cls._snap(r, h, w, stride) for r in rects]
                changed = snapped != rects
                rects = snapped
        return cls(sorted((int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rects), frame)

    @staticmethod
    def _snap(r: Sequence[float], h: int, w: int, stride: int) -> tuple[float, float, float, float]:
        x1, y1 = max(0, int(r[0]) // stride * stride), max(0, int(r[1]) // stride * stride)
        x2, y2 = min(w, -(-int(np.ceil(r[2])) // stride) * stride), min(h, -(-int(np.ceil(r[3])) // stride) * stride)
        return float(x1), float(y1), float(x2), float(y2)

    @classmethod
    def whole(cls, frame: tuple[int, int]) -> RegionPlan:
        """The whole frame as one region."""
        return cls([(0, 0, frame[1], frame[0])], frame)

    @property
    def share(self) -> float:
        """Share of the frame the regions cover."""
        h, w = self.frame
        return sum((r[2] - r[0]) * (r[3] - r[1]) for r in self.rects) / float(h * w)

    @property
    def is_whole(self) -> bool:
        return self.rects == [(0, 0, self.frame[1], self.frame[0])]

    def carried(self, boxes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """For each box (x1, y1, x2, y2): True when it is clear of every region, so it stands as last found."""
        return np.array([not any(_overlap(b, r) for r in self.rects) for b in boxes], dtype=bool)
