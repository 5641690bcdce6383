"""Street layout (sidewalks, roadway, shop fronts, painted no-occupation lines) and its static rendering.

The street runs along X. From the near building line outwards: near sidewalk, roadway with lanes, far
sidewalk, far shop fronts. A no-occupation zone is the strip between a shop front and its painted line.

>>> import numpy as np
>>> layout = StreetLayout.sample(np.random.default_rng(0))
>>> layout.near_wall < layout.road[0] < layout.road[1] < layout.far_wall
True
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from training.synth.camera import Camera
from training.synth.geometry import Face
from training.synth.painter import SCENERY_ID, Color, Painter
from training.synth.text import NOTICE_WORDS, shop_name, text_patch

X_SPAN = 150.0  # metres of street drawn either side of the camera
_SIGN_BG: tuple[Color, ...] = (
    (30, 30, 180),
    (150, 70, 10),
    (40, 120, 30),
    (20, 180, 230),
    (240, 240, 240),
    (30, 30, 30),
    (20, 100, 220),
)
_WALLS: tuple[Color, ...] = (
    (190, 200, 205),
    (150, 160, 170),
    (170, 180, 195),
    (120, 130, 140),
    (200, 205, 210),
    (120, 140, 170),
    (160, 170, 150),
)
_PAVING: tuple[Color, ...] = ((150, 155, 160), (130, 140, 150), (165, 165, 160), (120, 125, 135), (140, 150, 165))


@dataclass(frozen=True)
class Shop:
    """One shop front on a building line: x extent, sign text and colours, glass front or roller shutter."""

    x0: float
    x1: float
    name: str
    sign_bg: Color
    sign_fg: Color
    wall: Color
    shutter: bool
    floors: int


@dataclass(frozen=True)
class ZoneRect:
    """A zone on the ground: world rectangle [x0, x1] x [z0, z1]."""

    id: str
    kind: str  # "no_occupation" | "roadway"
    x0: float
    x1: float
    z0: float
    z1: float

    def contains(self, x: float, z: float) -> bool:
        return self.x0 <= x <= self.x1 and self.z0 <= z <= self.z1

    def corners(self) -> np.ndarray:
        return np.array([[self.x0, 0, self.z0], [self.x1, 0, self.z0], [self.x1, 0, self.z1], [self.x0, 0, self.z1]])

    def to_pixels(self, cam: Camera) -> list[list[float]] | None:
        """The zone as seen, clipped to the image; None when it is out of view."""
        uv = cam.project_polygon(self.corners())
        if uv is None:
            return None
        frame = np.float32([[0, 0], [cam.width - 1, 0], [cam.width - 1, cam.height_px - 1], [0, cam.height_px - 1]])
        area, poly = cv2.intersectConvexConvex(np.float32(uv), frame)
        if area < 200 or poly is None:
            return None
        return [[round(float(x), 1), round(float(y), 1)] for x, y in poly.reshape(-1, 2)]


@dataclass(frozen=True)
class StreetLayout:
    """Cross-street bands (z ranges, metres) plus shops, lamps and trees along the street."""

    near_wall: float
    road: tuple[float, float]
    far_wall: float
    lanes: tuple[tuple[float, int], ...]  # (lane centre z, direction +1/-1 along X)
    line_depth: float  # painted no-occupation line, metres out from the building line
    far_shops: tuple[Shop, ...]
    near_shops: tuple[Shop, ...]
    lamps: tuple[float, ...]  # x on the far curb
    trees: tuple[float, ...]  # x on the near curb
    paving: Color
    asphalt: Color

    @classmethod
    def sample(
        cls,
        rng: np.random.Generator,
        max_lanes: int = 4,
        far_walk: tuple[float, float] = (3.5, 7.0),
        line_depth: tuple[float, float] = (1.8, 3.0),
    ) -> StreetLayout:
        near_walk = float(rng.uniform(2.5, 5.0))
        n_lanes = int(rng.integers(2, max_lanes + 1))
        lane_w = float(rng.uniform(3.2, 3.7))
        road = (near_walk, near_walk + n_lanes * lane_w)
        far_wall = road[1] + float(rng.uniform(*far_walk))
        lanes = tuple((road[0] + (i + 0.5) * lane_w, -1 if i < n_lanes // 2 else 1) for i in range(n_lanes))
        return cls(
            near_wall=0.0,
            road=road,
            far_wall=far_wall,
            lanes=lanes,
            line_depth=float(rng.uniform(*line_depth)),
            far_shops=_shops(rng),
            near_shops=_shops(rng),
            lamps=tuple(float(x) for x in np.arange(-X_SPAN, X_SPAN, rng.uniform(18, 30)) + rng.uniform(0, 10)),
            trees=tuple(float(x) for x in np.arange(-X_SPAN, X_SPAN, rng.uniform(8, 14)) + rng.uniform(0, 6))
            if rng.random() < 0.5
            else (),
            paving=_PAVING[int(rng.integers(len(_PAVING)))],
            asphalt=tuple(int(v) for v in rng.integers(60, 95) + rng.integers(-4, 5, 3)),
        )

    @property
    def far_walk(self) -> tuple[float, float]:
        return self.road[1], self.far_wall

    @property
    def near_walk(self) -> tuple[float, float]:
        return self.near_wall, self.road[0]

    def shop_zones(self) -> list[ZoneRect]:
        """No-occupation strips in front of the far shops (the near ones face away from most cameras)."""
        z1 = self.far_wall
        return [
            ZoneRect(f"front-{i}", "no_occupation", s.x0 + 0.3, s.x1 - 0.3, z1 - self.line_depth, z1)
            for i, s in enumerate(self.far_shops)
        ]

    def roadway_zone(self) -> ZoneRect:
        return ZoneRect("road", "roadway", -X_SPAN, X_SPAN, self.road[0], self.road[1])


def _shops(rng: np.random.Generator) -> tuple[Shop, ...]:
    shops, x = [], -X_SPAN
    while x < X_SPAN:
        w = float(rng.uniform(4.0, 8.0))
        bg = _SIGN_BG[int(rng.integers(len(_SIGN_BG)))]
        fg = (30, 30, 30) if sum(bg) > 450 else ((40, 220, 250) if rng.random() < 0.3 else (250, 250, 250))
        shops.append(
            Shop(
                x,
                x + w,
                shop_name(rng),
                bg,
                fg,
                _WALLS[int(rng.integers(len(_WALLS)))],
                bool(rng.random() < 0.2),
                int(rng.integers(1, 6)),
            )
        )
        x += w
    return tuple(shops)


@dataclass
class Backdrop:
    """The static part of a frame: pixels, which pixels glow at night, and where lamps shine."""

    image: np.ndarray
    emissive: np.ndarray  # uint8 0/1: signs and shop windows keep their light at night
    lamps: list[tuple[float, float, float]]  # (u, v, radius px) of lamp heads in view


def render_backdrop(layout: StreetLayout, cam: Camera, night: bool) -> Backdrop:
    h, w = cam.height_px, cam.width
    img = np.empty((h, w, 3), np.uint8)
    hy = int(np.clip(cam.horizon_y, 0, h))
    sky_top, sky_low = np.array([200, 160, 120], float), np.array([235, 225, 215], float)
    if hy > 0:
        t = np.linspace(0, 1, hy)[:, None]
        img[:hy] = (sky_top * (1 - t) + sky_low * t).astype(np.uint8)[:, None, :]
    img[hy:] = layout.paving
    p = Painter(img, cam)
    emissive = np.zeros((h, w), np.uint8)
    x0, x1 = -X_SPAN, X_SPAN

    def ground(z0: float, z1: float, color: Color) -> None:
        p.wpoly(np.array([[x0, 0, z0], [x1, 0, z0], [x1, 0, z1], [x0, 0, z1]]), color)

    ground(layout.road[0], layout.road[1], layout.asphalt)
    for zc in (layout.road[0], layout.road[1]):
        ground(zc - 0.2, zc, (175, 175, 170))
    _tiles(p, layout)
    for lane, nxt in pairwise(layout.lanes):
        zc = (lane[0] + nxt[0]) / 2
        if lane[1] != nxt[1]:  # the centre line between the two directions: solid yellow
            ground(zc - 0.1, zc + 0.1, (40, 200, 230))
            continue
        xs = np.arange(x0, x1, 9.0)[:, None]
        dashes = np.stack(
            [
                np.concatenate([xs, xs + 4, xs + 4, xs], 1),
                np.zeros((len(xs), 4)),
                np.tile([zc - 0.08, zc - 0.08, zc + 0.08, zc + 0.08], (len(xs), 1)),
            ],
            -1,
        )
        p.wpolys(dashes, (225, 225, 225))
    line_z = layout.far_wall - layout.line_depth
    ground(line_z - 0.1, line_z, (40, 200, 240))
    _facade(p, emissive, layout.far_shops, layout.far_wall, toward=-1, night=night)
    _facade(p, emissive, layout.near_shops, layout.near_wall, toward=1, night=night)
    lamps = []
    for x in layout.lamps:
        uv, depth = cam.project(np.array([[x, 6.5, layout.road[1] + 0.4]]))
        if depth[0] > 1 and -50 < uv[0, 0] < w + 50:
            lamps.append((float(uv[0, 0]), float(uv[0, 1]), float(cam.focal * 6.0 / depth[0])))
    return Backdrop(img, emissive, lamps)


def _tiles(p: Painter, layout: StreetLayout) -> None:
    """Paving joints: cheap perspective cues that make sidewalks read as ground."""
    dark = tuple(int(c * 0.85) for c in layout.paving)
    for z0, z1 in (layout.near_walk, layout.far_walk):
        for z in np.arange(z0 + 1.0, z1 - 0.3, 1.0):
            p.wpoly(np.array([[-X_SPAN, 0, z], [X_SPAN, 0, z], [X_SPAN, 0, z + 0.04], [-X_SPAN, 0, z + 0.04]]), dark)


def _facade(p: Painter, emissive: np.ndarray, shops: tuple[Shop, ...], z: float, toward: int, night: bool) -> None:
    cam = p.cam
    if (cam.position[2] - z) * toward <= 0.3:
        return
    normal = np.array([0.0, 0.0, float(toward)])
    right = np.cross(normal, [0.0, 1.0, 0.0])
    for shop in shops:
        wall_h = 3.6 + 3.0 * shop.floors
        # The face's origin is its bottom-left corner as seen from the street.
        start = shop.x0 if right[0] > 0 else shop.x1
        face = Face(np.array([start, 0.0, z]), right, shop.x1 - shop.x0, wall_h, normal)
        if not _in_view(cam, face):
            continue
        w = face.width
        face.rect(p, 0, w, 0, wall_h, shop.wall)
        windows = [
            (s, s + 1.1, 4.4 + 3.0 * f, 5.9 + 3.0 * f) for f in range(shop.floors) for s in np.arange(0.6, w - 1.2, 1.8)
        ]
        if windows:
            face.rects(p, windows, (110, 95, 85) if not night else (90, 170, 210))
        if shop.shutter:
            face.rect(p, 0.3, w - 0.3, 0, 2.6, (165, 165, 160))
            face.rects(p, [(0.3, w - 0.3, t, t + 0.04) for t in np.arange(0.15, 2.6, 0.25)], (120, 120, 118))
        else:
            glass = (130, 150, 160) if not night else (120, 200, 235)
            face.rect(p, 0.2, w - 0.2, 0, 2.6, (70, 70, 70))
            face.rect(p, 0.3, w - 0.3, 0.05, 2.5, glass)
            face.rect(p, w * 0.4, w * 0.6, 0, 2.4, (60, 60, 60) if not night else (100, 180, 220))
            _mark(p, emissive, face, 0.3, w - 0.3, 0.05, 2.5)
        face.rect(p, 0.1, w - 0.1, 2.75, 3.55, shop.sign_bg)
        face.patch(p, text_patch(shop.name, shop.sign_fg, shop.sign_bg), 0.3, w - 0.3, 2.8, 3.5)
        _mark(p, emissive, face, 0.1, w - 0.1, 2.75, 3.55)
        if shop.floors == 1 and not shop.shutter:
            notice = NOTICE_WORDS[int(shop.x0) % len(NOTICE_WORDS)]
            face.patch(p, text_patch(notice, (250, 250, 250), (30, 30, 160)), 0.35, 1.6, 2.1, 2.4)


def _in_view(cam: Camera, face: Face) -> bool:
    uv = cam.project_polygon(face.at([0, face.width, face.width, 0], [0, 0, face.height, face.height]))
    if uv is None:
        return False
    lo, hi = uv.min(0), uv.max(0)
    return bool(hi[0] >= 0 and lo[0] <= cam.width and hi[1] >= 0 and lo[1] <= cam.height_px)


def _mark(p: Painter, emissive: np.ndarray, face: Face, s0: float, s1: float, t0: float, t1: float) -> None:
    uv = p.cam.project_polygon(face.at([s0, s1, s1, s0], [t0, t0, t1, t1]))
    if uv is not None:
        cv2.fillPoly(emissive, [np.round(uv).astype(np.int32)], 1)


def scenery_props(layout: StreetLayout) -> list[tuple[str, float, float]]:
    """Lamp posts and trees as (kind, x, z): drawn among the objects so that they occlude correctly."""
    props = [("lamp", x, layout.road[1] + 0.4) for x in layout.lamps]
    props += [("tree", x, layout.road[0] - 0.6) for x in layout.trees]
    return props


def draw_prop(p: Painter, kind: str, x: float, z: float) -> None:
    p.begin(SCENERY_ID)
    if kind == "lamp":
        p.wline(np.array([x, 0.0, z]), np.array([x, 6.6, z]), (70, 75, 80), 0.14)
        p.wline(np.array([x, 6.5, z]), np.array([x, 6.5, z - 1.2]), (70, 75, 80), 0.1)
    else:
        p.wline(np.array([x, 0.0, z]), np.array([x, 3.0, z]), (40, 55, 75), 0.25)
        uv, depth = p.cam.project(np.array([[x, 4.2, z]]))
        if depth[0] > 0.5:
            r = p.cam.focal * 1.8 / depth[0]
            p.ellipse(uv[0], (r, r * 0.8), (50, 110, 60))
            p.ellipse(uv[0] + [-r * 0.3, -r * 0.25], (r * 0.6, r * 0.5), (70, 140, 80))
    p.end()
