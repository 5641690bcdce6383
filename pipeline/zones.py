"""Zone membership: is a box standing in a zone?

A box counts as in a zone when its bottom-centre (where the object meets the ground) lies inside the
polygon, as supervision's `PolygonZone` with `Position.BOTTOM_CENTER` and Frigate's zones: a tall item
leaning over the shop-front line is judged by where it stands, not by what it overhangs. The polygon
is rasterised once, so each test is a mask lookup per box.

>>> from feixian.domain import Zone
>>> front = ZoneTester(Zone(id="front", kind="no_occupation", polygon=[(0, 100), (200, 100), (200, 200), (0, 200)]))
>>> front.contains(np.array([[10.0, 50, 50, 150], [10, 10, 50, 60]])).tolist()
[True, False]
"""

from __future__ import annotations

import cv2
import numpy as np

from feixian.domain import Zone, ZoneKind

# Bounds the rasterised mask: no camera frame is wider than this, so a larger vertex is a config error.
MAX_COORDINATE = 16384


def bottom_centres(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) points at the middle of each box's bottom edge."""
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)


def ground_pixels(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) integer pixel (column, row) where each box meets the ground: the middle of its last pixel row.

    A box's bottom edge y2 lies *below* its last row (a box ending at the bottom of a 240-row frame has
    y2 = 240, row 239), so the row is ceil(y2) - 1: a zone drawn to the frame's last row then holds the
    object standing on it.
    """
    centres = bottom_centres(xyxy)
    cols = np.floor(centres[:, 0]).astype(np.int64)
    rows = np.maximum(np.ceil(centres[:, 1]).astype(np.int64) - 1, 0)
    return np.stack([cols, rows], axis=1)


class ZoneTester:
    """Tests boxes against one configured zone (pixel coordinates of the camera frame).

    Points on the polygon's edge count as inside, like a filled polygon drawn on the frame.
    """

    def __init__(self, zone: Zone):
        self.zone = zone
        poly = np.round(np.asarray(zone.polygon, dtype=np.float64)).astype(np.int32)
        if poly.max() >= MAX_COORDINATE:
            raise ValueError(f"zone {zone.id}: vertex beyond {MAX_COORDINATE} px; polygon coordinates are pixels")
        width, height = int(poly[:, 0].max()) + 1, int(poly[:, 1].max()) + 1
        filled = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(filled, [poly], 1)
        self._mask = filled.astype(bool)

    @property
    def id(self) -> str:
        return self.zone.id

    @property
    def kind(self) -> ZoneKind:
        return self.zone.kind

    def contains(self, xyxy: np.ndarray) -> np.ndarray:
        """Boolean per box (N, 4 xyxy): bottom-centre inside the zone."""
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        pts = ground_pixels(xyxy)
        h, w = self._mask.shape
        x, y = pts[:, 0], pts[:, 1]
        inside = (x >= 0) & (y >= 0) & (x < w) & (y < h)
        result = np.zeros(len(pts), dtype=bool)
        result[inside] = self._mask[y[inside], x[inside]]
        return result


def zone_testers(zones: list[Zone], kinds: set[ZoneKind]) -> list[ZoneTester]:
    """Testers for the zones of the given kinds (e.g. `feixian.config.ZONE_KINDS_FOR[category]`)."""
    return [ZoneTester(z) for z in zones if z.kind in kinds]
