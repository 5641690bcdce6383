"""Drawing primitives that also keep an object-id map, so labels know each object's box and visible share.

Objects are painted far to near; every pixel an object paints carries its id in `ids`. The pixels an
object owns right after it is painted are its unoccluded area; what still carries its id at the end is
what nearer objects left visible. Pixels painted inside `evidence()` are also set in `marks` (and any
later paint clears them), so a label can depend on whether the parts that define an object's look (a
truck's earth heap, its mud) are still in view.

>>> import numpy as np
>>> p = Painter(np.zeros((40, 60, 3), np.uint8))
>>> p.begin(1); p.poly(np.array([[10, 10], [30, 10], [30, 30], [10, 30]]), (0, 0, 255)); s = p.end()
>>> s.box, s.pixels > 0
((10.0, 10.0, 30.0, 30.0), True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from training.synth.camera import Camera

Color = tuple[int, int, int]
SCENERY_ID = 255  # unlabelled props (trees, lamp posts) still hide what stands behind them
_SHIFT = 3  # sub-pixel bits for cv2 polygon drawing: small far objects keep their shape
_SCALE = 1 << _SHIFT


@dataclass(frozen=True)
class Stroke:
    """What one object painted: its box (x0, y0, x1, y1) clipped to the image, the same box unclipped,
    and how many pixels it owned right after painting."""

    box: tuple[float, float, float, float]
    full_box: tuple[float, float, float, float]
    pixels: int


class Painter:
    """Paints BGR polygons, lines and patches, tracking the current object's extent and pixels."""

    def __init__(self, img: np.ndarray, cam: Camera | None = None):
        self.img = img
        self.cam = cam
        self.ids = np.zeros(img.shape[:2], np.uint8)
        self.marks = np.zeros(img.shape[:2], np.uint8)
        self.light = np.array([0.35, 0.8, -0.5]) / np.linalg.norm([0.35, 0.8, -0.5])
        self._oid = 0
        self._box = [np.inf, np.inf, -np.inf, -np.inf]
        self._marking = False

    def shade(self, color: Color, normal: np.ndarray) -> Color:
        """`color` as lit from `self.light` on a surface facing `normal` (ambient plus diffuse)."""
        k = 0.62 + 0.45 * max(0.0, float(np.dot(normal, self.light)))
        return tuple(min(255, int(c * k)) for c in color)

    # -- object bookkeeping -------------------------------------------------------------------------
    def begin(self, oid: int) -> None:
        """Start painting object `oid` (1..255); 0 paints scenery that nothing labels."""
        self._oid = oid
        self._box = [np.inf, np.inf, -np.inf, -np.inf]

    @contextmanager
    def evidence(self) -> Iterator[None]:
        """Paint the current object's look-defining parts inside this block.

        >>> p = Painter(np.zeros((20, 20, 3), np.uint8)); p.begin(1)
        >>> with p.evidence(): p.poly(np.array([[2, 2], [12, 2], [12, 12], [2, 12]]), (0, 0, 255))
        >>> p.poly(np.array([[8, 2], [18, 2], [18, 12], [8, 12]]), (255, 0, 0))
        >>> int(p.marks.sum()) < 100 < int((p.ids == 1).sum())
        True
        """
        self._marking = True
        try:
            yield
        finally:
            self._marking = False

    def _stamp(self, draw: Callable[[np.ndarray, int], None]) -> None:
        """Apply one drawing call to the id map (current object) and the evidence marks."""
        draw(self.ids, self._oid)
        draw(self.marks, int(self._marking))

    def end(self) -> Stroke:
        h, w = self.ids.shape
        full = tuple(float(v) for v in self._box)
        x0, y0, x1, y1 = full
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(w), x1), min(float(h), y1)
        pixels = 0
        if x1 > x0 and y1 > y0 and self._oid:
            region = self.ids[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            pixels = int(np.count_nonzero(region == self._oid))
        self._oid = 0
        return Stroke((x0, y0, x1, y1), full, pixels)

    def _extend(self, uv: np.ndarray, pad: float = 0.0) -> None:
        if self._oid:
            b = self._box
            b[0] = min(b[0], float(uv[:, 0].min()) - pad)
            b[1] = min(b[1], float(uv[:, 1].min()) - pad)
            b[2] = max(b[2], float(uv[:, 0].max()) + pad)
            b[3] = max(b[3], float(uv[:, 1].max()) + pad)

    # -- pixel-space primitives ---------------------------------------------------------------------
    def poly(self, uv: np.ndarray, color: Color) -> None:
        pts = [np.round(np.asarray(uv) * _SCALE).astype(np.int32)]
        cv2.fillPoly(self.img, pts, color, cv2.LINE_AA, _SHIFT)
        if self._oid:
            self._stamp(lambda m, v: cv2.fillPoly(m, pts, v, cv2.LINE_8, _SHIFT))
            self._extend(np.asarray(uv, float))

    def line(self, a: np.ndarray, b: np.ndarray, color: Color, thickness: float) -> None:
        t = max(1, int(round(thickness)))
        pa = tuple(int(round(v * _SCALE)) for v in a)
        pb = tuple(int(round(v * _SCALE)) for v in b)
        cv2.line(self.img, pa, pb, color, t, cv2.LINE_AA, _SHIFT)
        if self._oid:
            self._stamp(lambda m, v: cv2.line(m, pa, pb, v, t, cv2.LINE_8, _SHIFT))
            self._extend(np.array([a, b], float), t / 2)

    def ellipse(self, center: np.ndarray, axes: tuple[float, float], color: Color, angle: float = 0.0) -> None:
        c = (int(round(center[0] * _SCALE)), int(round(center[1] * _SCALE)))
        ax = (max(1, int(round(axes[0] * _SCALE))), max(1, int(round(axes[1] * _SCALE))))
        cv2.ellipse(self.img, c, ax, angle, 0, 360, color, -1, cv2.LINE_AA, _SHIFT)
        if self._oid:
            self._stamp(lambda m, v: cv2.ellipse(m, c, ax, angle, 0, 360, v, -1, cv2.LINE_8, _SHIFT))
            r = max(axes)
            self._extend(np.array([[center[0] - r, center[1] - r], [center[0] + r, center[1] + r]]))

    def patch(self, rgb_patch: np.ndarray, quad: np.ndarray) -> None:
        """Warp a BGR patch onto a pixel quad (corners: top-left, top-right, bottom-right, bottom-left)."""
        h, w = self.img.shape[:2]
        x0, y0 = np.floor(quad.min(0)).astype(int)
        x1, y1 = np.ceil(quad.max(0)).astype(int) + 1
        x0c, y0c, x1c, y1c = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1c - x0c < 2 or y1c - y0c < 2:
            return
        ph, pw = rgb_patch.shape[:2]
        src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
        m = cv2.getPerspectiveTransform(src, np.float32(quad - [x0c, y0c]))
        size = (x1c - x0c, y1c - y0c)
        warped = cv2.warpPerspective(rgb_patch, m, size, flags=cv2.INTER_AREA)
        mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), m, size, flags=cv2.INTER_LINEAR)
        region = self.img[y0c:y1c, x0c:x1c]
        a = mask[..., None].astype(np.float32) / 255.0
        region[:] = (warped * a + region * (1 - a)).astype(np.uint8)
        if self._oid:
            inside = mask > 127

            def fill(m: np.ndarray, v: int) -> None:
                m[y0c:y1c, x0c:x1c][inside] = v

            self._stamp(fill)
            self._extend(quad)

    # -- world-space primitives ---------------------------------------------------------------------
    def wpoly(self, pts: np.ndarray, color: Color) -> np.ndarray | None:
        """Fill a planar world polygon; returns its pixel outline (None when behind the camera)."""
        uv = self.cam.project_polygon(np.asarray(pts, float))
        if uv is not None:
            self.poly(uv, color)
        return uv

    def wpolys(self, quads: np.ndarray, color: Color) -> None:
        """Fill many world polygons of one colour (N, K, 3) in one pass: windows, slats, lane dashes."""
        quads = np.asarray(quads, float)
        n, k = quads.shape[:2]
        c = self.cam.to_camera(quads.reshape(-1, 3)).reshape(n, k, 3)
        front = (c[..., 2] >= 0.5).all(1)
        if front.any():
            cf = c[front]
            uv = np.stack(
                [
                    self.cam.cx + self.cam.focal * cf[..., 0] / cf[..., 2],
                    self.cam.cy + self.cam.focal * cf[..., 1] / cf[..., 2],
                ],
                -1,
            )
            self._fill_many(uv, color)
        for q in quads[~front]:
            self.wpoly(q, color)

    def _fill_many(self, uv: np.ndarray, color: Color) -> None:
        h, w = self.ids.shape
        lo, hi = uv.min(1), uv.max(1)
        keep = (hi[:, 0] >= 0) & (lo[:, 0] <= w) & (hi[:, 1] >= 0) & (lo[:, 1] <= h)
        if not keep.any():
            return
        pts = list(np.round(uv[keep] * _SCALE).astype(np.int32))
        cv2.fillPoly(self.img, pts, color, cv2.LINE_AA, _SHIFT)
        if self._oid:
            self._stamp(lambda m, v: cv2.fillPoly(m, pts, v, cv2.LINE_8, _SHIFT))
            self._extend(uv[keep].reshape(-1, 2))

    def wline(self, a: np.ndarray, b: np.ndarray, color: Color, width_m: float) -> None:
        """A world segment drawn `width_m` metres thick (at least one pixel)."""
        uv, depth = self.cam.project(np.array([a, b], float))
        if depth.min() <= 0.5:
            return
        self.line(uv[0], uv[1], color, self.cam.focal * width_m / float(depth.mean()))

    def wpatch(self, rgb_patch: np.ndarray, corners: np.ndarray) -> None:
        """Warp a patch onto a world quad (top-left, top-right, bottom-right, bottom-left)."""
        uv, depth = self.cam.project(np.asarray(corners, float))
        if depth.min() > 0.5:
            self.patch(rgb_patch, uv)
