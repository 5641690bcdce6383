"""Street-occupation items: stalls, vendor carts, piles of goods, tables, chairs and market umbrellas.

Each is drawn so that a small CNN can tell them apart by shape, not colour: a stall is a table under a
rectangular canopy on four poles with produce on top; a cart is a box on two big wheels with a push handle;
goods are stacked cartons, crates or sacks on the ground; an umbrella is a round or square canopy of panels
on one central pole.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> [cls.sample(rng).label for cls in (Stall, Cart, Goods, Table, Chair, Umbrella)]
['stall', 'cart', 'goods', 'table', 'chair', 'umbrella']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synth.geometry import UP, Local, draw_box, top_corners
from training.synth.painter import Color, Painter

_BRIGHT: tuple[Color, ...] = (
    (40, 40, 200),
    (170, 90, 20),
    (60, 160, 60),
    (30, 200, 240),
    (20, 120, 240),
    (235, 235, 235),
    (140, 60, 140),
    (200, 160, 40),
)
_PRODUCE: tuple[Color, ...] = (
    (30, 30, 210),
    (20, 140, 240),
    (40, 200, 230),
    (40, 160, 60),
    (60, 60, 150),
    (90, 200, 120),
    (200, 200, 230),
)
_CARTON: tuple[Color, ...] = ((90, 140, 185), (70, 115, 160), (110, 160, 200), (80, 125, 150))
_WOOD: tuple[Color, ...] = ((60, 100, 150), (40, 70, 110), (90, 130, 170))
_METAL = (150, 150, 150)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _legs(
    p: Painter, f: Local, a0: float, a1: float, b0: float, b1: float, y: float, color: Color, width: float
) -> None:
    for a in (a0, a1):
        for b in (b0, b1):
            p.wline(f.world([[a, 0.0, b]])[0], f.world([[a, y, b]])[0], color, width)


def _by_depth(p: Painter, f: Local, parts: list[tuple[tuple[float, float], object]]) -> list:
    """Parts keyed by local (a, b), farthest from the camera first."""
    cam = p.cam.position
    return [
        part
        for _, part in sorted(
            parts, key=lambda kp: -float(np.linalg.norm(f.world([[kp[0][0], 0.0, kp[0][1]]])[0] - cam))
        )
    ]


@dataclass(frozen=True)
class Stall:
    """A vendor stall: produce on a cloth-skirted table under a striped or plain canopy on four poles."""

    length: float
    depth: float
    canopy_h: float
    canopy: Color
    stripe: Color | None
    gable: bool
    cloth: Color
    produce: tuple[tuple[float, float, int], ...]  # (a, b) fractions of the table top, colour index
    label: str = "stall"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Stall:
        n = int(rng.integers(5, 12))
        return cls(
            length=float(rng.uniform(1.4, 2.4)),
            depth=float(rng.uniform(0.75, 1.05)),
            canopy_h=float(rng.uniform(2.0, 2.35)),
            canopy=_pick(rng, _BRIGHT),
            stripe=(245, 245, 245) if rng.random() < 0.5 else None,
            gable=bool(rng.random() < 0.35),
            cloth=_pick(rng, _BRIGHT),
            produce=tuple(
                (float(rng.uniform(0.08, 0.92)), float(rng.uniform(0.15, 0.85)), int(rng.integers(len(_PRODUCE))))
                for _ in range(n)
            ),
        )

    @property
    def height_m(self) -> float:
        return self.canopy_h + (0.82 if self.gable else 0.22)

    @property
    def half_extent(self) -> tuple[float, float]:
        return self.length / 2 + 0.2, self.depth / 2 + 0.2

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        L, D, top = self.length / 2, self.depth / 2, 0.8
        cl, cd = L + 0.15, D + 0.2
        poles = [((a, b), (a, b)) for a in (-L, L) for b in (-D, D)]
        ordered = _by_depth(p, f, poles)
        for a, b in ordered[:2]:
            p.wline(f.world([[a, 0.0, b]])[0], f.world([[a, self.canopy_h, b]])[0], (60, 60, 60), 0.05)
        draw_box(p, f, -L, L, 0.0, top, -D, D, self.cloth, top=(200, 200, 200))
        items = [((-L + pa * 2 * L, -D + pb * 2 * D), (pa, pb, c)) for pa, pb, c in self.produce]
        for pa, pb, c in _by_depth(p, f, items):
            a, b = -L + pa * 2 * L, -D + pb * 2 * D
            centre = f.world([[a, top + 0.09, b]])[0]
            uv, depth = p.cam.project(np.array([centre]))
            r = p.cam.focal * 0.13 / max(depth[0], 0.5)
            p.ellipse(uv[0], (r, r * 0.8), _PRODUCE[c])
        for a, b in ordered[2:]:
            p.wline(f.world([[a, 0.0, b]])[0], f.world([[a, self.canopy_h, b]])[0], (60, 60, 60), 0.05)
        h0 = self.canopy_h
        faces = draw_box(p, f, -cl, cl, h0, h0 + 0.22, -cd, cd, self.canopy)
        if self.stripe is not None:
            for face in faces.values():
                for s in np.arange(0, face.width, 0.5):
                    face.rect(p, s, min(s + 0.25, face.width), 0, face.height, self.stripe)
        if self.gable:
            ridge = h0 + 0.6
            for sign in (-1, 1):
                eave = h0 + 0.22
                roof = f.world([[-cl, eave, sign * cd], [cl, eave, sign * cd], [cl, ridge, 0], [-cl, ridge, 0]])
                normal = np.cross(roof[1] - roof[0], roof[3] - roof[0])
                normal *= np.sign(np.dot(normal, f.eb * sign + UP))
                normal /= np.linalg.norm(normal)
                if np.dot(normal, p.cam.position - roof.mean(0)) > 0:
                    p.wpoly(roof, p.shade(self.canopy, normal))
                    if self.stripe is not None:
                        for a in np.arange(-cl, cl, 0.5):
                            q = f.world(
                                [
                                    [a, h0 + 0.22, sign * cd],
                                    [min(a + 0.25, cl), h0 + 0.22, sign * cd],
                                    [min(a + 0.25, cl), ridge, 0],
                                    [a, ridge, 0],
                                ]
                            )
                            p.wpoly(q, p.shade(self.stripe, normal))


@dataclass(frozen=True)
class Cart:
    """A push cart or tricycle cart: a box on two big spoked wheels with a handle, often holding produce."""

    length: float
    width: float
    color: Color
    glass: bool  # a glass display case on top (snack carts)
    produce: tuple[int, ...]
    label: str = "cart"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Cart:
        return cls(
            length=float(rng.uniform(1.1, 1.6)),
            width=float(rng.uniform(0.6, 0.8)),
            color=_pick(rng, _BRIGHT + (_METAL, _METAL)),
            glass=bool(rng.random() < 0.3),
            produce=tuple(int(c) for c in rng.integers(0, len(_PRODUCE), int(rng.integers(0, 8)))),
        )

    @property
    def height_m(self) -> float:
        return 1.45 if self.glass else 1.15

    @property
    def half_extent(self) -> tuple[float, float]:
        return self.length / 2 + 0.5, self.width / 2 + 0.1

    def _wheel(self, p: Painter, f: Local, b: float) -> None:
        r = 0.33
        ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ring = np.stack([r * np.cos(ang), r + r * np.sin(ang), np.full(16, b)], 1)
        p.wpoly(f.world(ring), (25, 25, 25))
        p.wpoly(f.world(ring * [0.8, 1, 1] + [0, r * 0.2, 0]), (120, 120, 120))
        for k in range(4):
            t = np.pi * k / 4
            c, s = r * 0.8 * np.cos(t), r * 0.8 * np.sin(t)
            spoke = [[c, r + s, b], [-c, r - s, b]]
            w = f.world(spoke)
            p.wline(w[0], w[1], (40, 40, 40), 0.025)
        p.wpoly(f.world(ring * [0.18, 0.18, 1] + [0, r * 0.82, 0]), (60, 60, 60))

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        L, W = self.length / 2, self.width / 2
        near_left = np.dot(f.eb, p.cam.position - f.origin) > 0
        wheels = (-W - 0.05, W + 0.05) if near_left else (W + 0.05, -W - 0.05)
        self._wheel(p, f, wheels[0])
        p.wline(f.world([[L - 0.1, 0.0, 0.0]])[0], f.world([[L - 0.1, 0.45, 0.0]])[0], (40, 40, 40), 0.05)
        draw_box(p, f, -L, L, 0.45, 0.95, -W, W, self.color, top=(70, 70, 70))
        for i, c in enumerate(self.produce):
            a = -L + 0.15 + (i % 4) * (2 * L - 0.3) / 3
            b = -W / 2 + (i // 4) * W
            uv, depth = p.cam.project(f.world([[a, 1.0, b]]))
            r = p.cam.focal * 0.12 / max(depth[0], 0.5)
            p.ellipse(uv[0], (r, r * 0.85), _PRODUCE[c])
        if self.glass:
            draw_box(p, f, -L + 0.1, L - 0.1, 0.95, 1.45, -W + 0.05, W - 0.05, (170, 150, 130), top=(190, 175, 160))
        self._wheel(p, f, wheels[1])
        grip = f.world([[-L - 0.5, 1.1, -W], [-L - 0.5, 1.1, W]])
        for b in (-W, W):
            a = f.world([[-L, 0.9, b], [-L - 0.5, 1.1, b]])
            p.wline(a[0], a[1], (50, 50, 50), 0.04)
        p.wline(grip[0], grip[1], (30, 30, 30), 0.05)


@dataclass(frozen=True)
class Goods:
    """A pile of cartons, plastic crates or woven sacks stacked on the ground."""

    boxes: tuple[tuple[float, float, float, float, float, float, Color, str], ...]  # a0 a1 y0 y1 b0 b1 colour kind
    label: str = "goods"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Goods:
        kind = _pick(rng, ("carton", "carton", "carton", "crate", "sack"))
        size = {"carton": (0.35, 0.6), "crate": (0.45, 0.6), "sack": (0.6, 0.9)}[kind]
        cols, rows = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        boxes = []
        for i in range(cols):
            for j in range(rows):
                levels = int(rng.integers(1, 4 if kind != "sack" else 3))
                y = 0.0
                for _ in range(levels):
                    s = float(rng.uniform(*size))
                    h = s * (0.55 if kind == "sack" else float(rng.uniform(0.6, 1.0)))
                    a, b = i * 0.65 + float(rng.uniform(-0.04, 0.04)), j * 0.62
                    color = {
                        "carton": _pick(rng, _CARTON),
                        "crate": _pick(rng, _BRIGHT),
                        "sack": _pick(rng, ((225, 225, 220), (200, 210, 215), (170, 120, 60))),
                    }[kind]
                    boxes.append((a - s / 2, a + s / 2, y, y + h, b - s / 2, b + s / 2, color, kind))
                    y += h
        return cls(tuple(boxes))

    @property
    def height_m(self) -> float:
        return max(b[3] for b in self.boxes)

    @property
    def half_extent(self) -> tuple[float, float]:
        a = max(b[1] for b in self.boxes) - min(b[0] for b in self.boxes)
        b = max(b[5] for b in self.boxes) - min(b[4] for b in self.boxes)
        return a / 2 + 0.1, b / 2 + 0.1

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        a_mid = (max(b[1] for b in self.boxes) + min(b[0] for b in self.boxes)) / 2
        b_mid = (max(b[5] for b in self.boxes) + min(b[4] for b in self.boxes)) / 2
        f = Local(x, z, heading)
        parts = [(((bx[0] + bx[1]) / 2 - a_mid, (bx[4] + bx[5]) / 2 - b_mid), bx) for bx in self.boxes]
        # Lower boxes first within a column, so stacks paint bottom-up.
        for a0, a1, y0, y1, b0, b1, color, kind in sorted(_by_depth(p, f, parts), key=lambda bx: bx[2]):
            a0, a1, b0, b1 = a0 - a_mid, a1 - a_mid, b0 - b_mid, b1 - b_mid
            faces = draw_box(p, f, a0, a1, y0, y1, b0, b1, color)
            dark = tuple(int(c * 0.55) for c in color)
            for face in faces.values():
                if kind == "carton":
                    face.rect(p, face.width * 0.42, face.width * 0.58, face.height * 0.75, face.height, (150, 170, 190))
                    face.rect(p, face.width * 0.15, face.width * 0.45, face.height * 0.2, face.height * 0.45, dark)
                elif kind == "crate":
                    for t in (0.25, 0.55, 0.85):
                        face.rect(p, 0.03, face.width - 0.03, face.height * (t - 0.08), face.height * t, dark)
                else:
                    face.rect(p, 0, face.width, face.height * 0.45, face.height * 0.55, (60, 60, 170))
            if kind == "carton" and p.cam.position[1] > y1:
                am = (a0 + a1) / 2
                p.wpoly(top_corners(f, am - 0.04, am + 0.04, y1 + 0.005, b0, b1), (150, 170, 190))


@dataclass(frozen=True)
class Table:
    """A café or street-food table: square, long or round top on legs, sometimes with a cloth."""

    length: float
    depth: float
    height: float
    color: Color
    cloth: Color | None
    round_top: bool
    label: str = "table"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Table:
        round_top = bool(rng.random() < 0.3)
        length = float(rng.uniform(0.7, 1.5)) if not round_top else float(rng.uniform(0.7, 1.0))
        return cls(
            length=length,
            depth=float(rng.uniform(0.6, 0.9)) if not round_top else length,
            height=float(rng.uniform(0.7, 0.78)),
            color=_pick(rng, ((235, 235, 235), (40, 40, 190), (170, 90, 20)) + _WOOD),
            cloth=_pick(rng, _BRIGHT) if rng.random() < 0.25 and not round_top else None,
            round_top=round_top,
        )

    @property
    def height_m(self) -> float:
        return self.height

    @property
    def half_extent(self) -> tuple[float, float]:
        return self.length / 2, self.depth / 2

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        L, D, h = self.length / 2 - 0.05, self.depth / 2 - 0.05, self.height
        leg = (80, 80, 80) if self.round_top else tuple(int(c * 0.7) for c in self.color)
        if self.round_top:
            p.wline(f.world([[0, 0, 0]])[0], f.world([[0, h, 0]])[0], leg, 0.06)
            p.wline(f.world([[-0.3, 0.01, 0]])[0], f.world([[0.3, 0.01, 0]])[0], leg, 0.05)
            ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
            rim = np.stack([L * np.cos(ang), np.full(20, h), D * np.sin(ang)], 1)
            p.wpoly(f.world(rim - [0, 0.04, 0]), p.shade(self.color, -UP * 0.2 + f.ea))
            p.wpoly(f.world(rim), p.shade(self.color, UP))
            return
        _legs(p, f, -L, L, -D, D, h, leg, 0.045)
        if self.cloth is not None:
            draw_box(p, f, -L - 0.05, L + 0.05, h - 0.3, h, -D - 0.05, D + 0.05, self.cloth)
        else:
            draw_box(p, f, -L - 0.05, L + 0.05, h - 0.04, h, -D - 0.05, D + 0.05, self.color)


@dataclass(frozen=True)
class Chair:
    """A plastic chair with a backrest, a folding chair, or a low stool."""

    style: str  # "plastic" | "folding" | "stool"
    color: Color
    label: str = "chair"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Chair:
        return cls(_pick(rng, ("plastic", "plastic", "folding", "stool")), _pick(rng, _BRIGHT + ((40, 40, 40),)))

    @property
    def height_m(self) -> float:
        return 0.45 if self.style == "stool" else 0.88

    @property
    def half_extent(self) -> tuple[float, float]:
        return 0.3, 0.3

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        seat = 0.45
        s = 0.2 if self.style != "stool" else 0.17
        leg = (60, 60, 60) if self.style == "folding" else tuple(int(c * 0.8) for c in self.color)
        back_first = np.dot(-f.ea, p.cam.position - f.origin) < 0  # the backrest is behind the seat
        if self.style != "stool" and back_first:
            self._back(p, f, s, seat)
        _legs(p, f, -s, s, -s, s, seat, leg, 0.03 if self.style != "stool" else 0.05)
        draw_box(p, f, -s - 0.02, s + 0.02, seat - 0.04, seat, -s - 0.02, s + 0.02, self.color)
        if self.style != "stool" and not back_first:
            self._back(p, f, s, seat)

    def _back(self, p: Painter, f: Local, s: float, seat: float) -> None:
        for b in (-s, s):
            p.wline(f.world([[-s, seat, b]])[0], f.world([[-s - 0.04, 0.88, b]])[0], self.color, 0.035)
        top = 0.88 if self.style == "plastic" else 0.82
        low = seat + 0.12 if self.style == "plastic" else 0.62
        back = f.world([[-s - 0.02, low, -s], [-s - 0.02, low, s], [-s - 0.05, top, s], [-s - 0.05, top, -s]])
        p.wpoly(back, p.shade(self.color, -f.ea))


@dataclass(frozen=True)
class Umbrella:
    """A large market or patio umbrella: a canopy of 4 or 8 panels on a central pole with a weighted base."""

    height: float
    radius: float
    panels: int
    colors: tuple[Color, Color]
    label: str = "umbrella"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Umbrella:
        c1 = _pick(rng, _BRIGHT + ((210, 230, 240),))
        c2 = c1 if rng.random() < 0.5 else _pick(rng, _BRIGHT)
        return cls(float(rng.uniform(2.2, 2.8)), float(rng.uniform(1.0, 1.6)), _pick(rng, (4, 8, 8)), (c1, c2))

    @property
    def height_m(self) -> float:
        return self.height + 0.05

    @property
    def half_extent(self) -> tuple[float, float]:
        return 0.4, 0.4  # the canopy overhangs tables and chairs; only the base claims ground

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        h, r = self.height, self.radius
        draw_box(p, f, -0.22, 0.22, 0.0, 0.12, -0.22, 0.22, (70, 70, 70))
        p.wline(f.world([[0, 0.1, 0]])[0], f.world([[0, h, 0]])[0], (200, 200, 200), 0.045)
        ang = np.linspace(0, 2 * np.pi, self.panels, endpoint=False) + np.pi / self.panels
        rim = h - 0.45
        apex = f.world([[0, h + 0.05, 0]])[0]
        edge = f.world(np.stack([r * np.cos(ang), np.full(self.panels, rim), r * np.sin(ang)], 1))
        valance = edge - UP * 0.18
        cam = p.cam.position
        panels = []
        for i in range(self.panels):
            j = (i + 1) % self.panels
            tri = np.array([apex, edge[i], edge[j]])
            normal = np.cross(edge[i] - apex, edge[j] - apex)
            if normal[1] < 0:
                normal = -normal
            normal /= np.linalg.norm(normal)
            dist = -float(np.linalg.norm(tri.mean(0) - cam))
            panels.append((dist, i, tri, normal, np.array([edge[i], edge[j], valance[j], valance[i]])))
        underside = cam[1] < rim
        for _, i, tri, normal, flap in sorted(panels, key=lambda t: t[0]):
            color = self.colors[i % 2]
            p.wpoly(flap, p.shade(color, normal * [1, 0, 1]))
            p.wpoly(tri, tuple(int(c * 0.55) for c in color) if underside else p.shade(color, normal))
