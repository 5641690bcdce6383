"""Cars and muck trucks as shaded 3D boxes with wheels, glass, lights and a plate on the visible end.

A truck has one of four looks: clean and covered (class `truck`), dirty (mud on the lower body and wheels,
class `truck_dirty`) and uncovered (a heap of earth above the box rim, class `truck_uncovered`). A truck is
never both dirty and uncovered. Every random detail (mud blobs, heap profile) is fixed at sampling time so
the same truck looks the same in every frame of a scenario.

>>> import numpy as np
>>> t = Truck.sample(np.random.default_rng(0), look="uncovered")
>>> t.label, t.plate[0] in "沪苏浙皖京津渝冀豫云辽黑湘鲁新赣鄂桂甘晋蒙陕吉闽贵粤青川宁琼"
('truck_uncovered', True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synth.geometry import UP, Face, Local, draw_box, top_corners
from training.synth.painter import Color, Painter
from training.synth.text import plate_patch, random_plate

TRUCK_LOOKS = ("clean", "covered", "dirty", "uncovered")
LOOK_LABEL = {"clean": "truck", "covered": "truck", "dirty": "truck_dirty", "uncovered": "truck_uncovered"}

_CAR_COLORS: tuple[Color, ...] = (
    (235, 235, 235),
    (30, 30, 30),
    (185, 185, 180),
    (40, 40, 190),
    (150, 80, 30),
    (120, 120, 120),
    (90, 40, 20),
    (150, 190, 210),
    (60, 100, 40),
)
# Truck bodies avoid browns so that mud and earth stay the only brown on a truck.
_CAB_COLORS: tuple[Color, ...] = (
    (40, 40, 200),
    (170, 90, 20),
    (235, 235, 235),
    (30, 200, 240),
    (60, 160, 60),
    (20, 120, 240),
)
_BOX_COLORS: tuple[Color, ...] = (
    (70, 160, 60),
    (40, 190, 220),
    (210, 210, 210),
    (160, 90, 40),
    (50, 60, 180),
    (40, 130, 230),
    (120, 150, 60),
)
_MUD: tuple[Color, ...] = ((45, 75, 105), (35, 58, 82), (60, 95, 125), (55, 80, 95))
_EARTH: tuple[Color, ...] = ((55, 95, 135), (40, 65, 90), (100, 110, 118), (75, 125, 160), (50, 80, 110))
_TARPS: tuple[Color, ...] = ((60, 120, 40), (160, 100, 30), (40, 80, 30), (90, 110, 80), (45, 50, 45))
_GLASS = (75, 60, 45)
_TYRE = (28, 28, 28)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _wheel(p: Painter, frame: Local, a: float, b: float, r: float, hub: Color) -> None:
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for radius, color in ((r, _TYRE), (r * 0.5, hub)):
        pts = np.stack([a + radius * np.cos(ang), r + radius * np.sin(ang), np.full_like(ang, b)], 1)
        p.wpoly(frame.world(pts), color)


def _side_b(p: Painter, frame: Local, half_width: float) -> float:
    """The b of the vehicle side facing the camera."""
    return half_width if np.dot(frame.eb, p.cam.position - frame.origin) > 0 else -half_width


def _end_visible(p: Painter, frame: Local, a: float) -> bool:
    return np.dot(frame.ea * np.sign(a), p.cam.position - (frame.origin + frame.ea * a)) > 0


def _plate(p: Painter, face: Face, plate: str, truck: bool, t0: float) -> None:
    s0 = face.width / 2 - 0.22
    face.patch(p, plate_patch(plate, truck), s0, s0 + 0.44, t0, t0 + 0.14)


@dataclass(frozen=True)
class Car:
    """A sedan or SUV with a blue plate."""

    length: float
    width: float
    color: Color
    suv: bool
    plate: str
    label: str = "car"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Car:
        suv = bool(rng.random() < 0.35)
        return cls(
            float(rng.uniform(4.0, 4.9)),
            float(rng.uniform(1.72, 1.9)),
            _pick(rng, _CAR_COLORS),
            suv,
            random_plate(rng, truck=False),
        )

    @property
    def height_m(self) -> float:
        return 1.7 if self.suv else 1.45

    @property
    def half_extent(self) -> tuple[float, float]:
        return self.length / 2, self.width / 2

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        L, W = self.length / 2, self.width / 2
        belt = 1.02 if self.suv else 0.92
        roof = 1.7 if self.suv else 1.45
        draw_box(p, f, -L + 0.15, L - 0.15, 0.14, 0.32, -W + 0.1, W - 0.1, (30, 30, 30))
        faces = draw_box(p, f, -L, L, 0.32, belt, -W, W, self.color)
        # Cabin: a frustum whose sloped ends are the windscreens.
        a0, a1 = (-L + 0.25, L - 1.2) if self.suv else (-L + 0.7, L - 1.3)
        t0, t1 = (a0 + 0.15, a1 - 0.55) if self.suv else (a0 + 0.55, a1 - 0.65)
        bw, tw = W - 0.08, W - 0.25
        bottom = [[a0, belt, -bw], [a1, belt, -bw], [a1, belt, bw], [a0, belt, bw]]
        top = [[t0, roof, -tw], [t1, roof, -tw], [t1, roof, tw], [t0, roof, tw]]
        cam = p.cam.position
        centre = f.world(bottom + top).mean(0)
        for idx in ((0, 1), (1, 2), (2, 3), (3, 0)):
            wq = f.world([bottom[idx[0]], bottom[idx[1]], top[idx[1]], top[idx[0]]])
            mid = wq.mean(0)
            normal = np.cross(wq[1] - wq[0], wq[3] - wq[0])
            normal /= np.linalg.norm(normal) + 1e-9
            if np.dot(normal, mid - centre) < 0:
                normal = -normal
            if np.dot(normal, cam - mid) <= 0:
                continue
            if idx in ((0, 1), (2, 3)):  # a side: body-coloured pillars around the side windows
                p.wpoly(wq, p.shade(self.color, normal))
                p.wpoly(mid + (wq - mid) * 0.8, _GLASS)
            else:
                p.wpoly(wq, _GLASS)
        if cam[1] > roof:
            p.wpoly(f.world(top), p.shade(self.color, UP))
        b = _side_b(p, f, W + 0.01)
        for a in (-L + 0.85, L - 0.85):
            _wheel(p, f, a, b, 0.33, (170, 170, 170))
        for name, lamp in (("front", (210, 235, 240)), ("back", (30, 30, 200))):
            face = faces.get(name)
            if face is None:
                continue
            h = face.height
            face.rect(p, 0.08, 0.45, h * 0.55, h * 0.85, lamp)
            face.rect(p, face.width - 0.45, face.width - 0.08, h * 0.55, h * 0.85, lamp)
            _plate(p, face, self.plate, False, 0.05)


@dataclass(frozen=True)
class Truck:
    """A muck truck (cab plus tipping box) with a yellow plate and one of four looks."""

    look: str
    length: float
    cab_len: float
    cab_h: float
    box_top: float
    cab_color: Color
    box_color: Color
    accent: Color
    plate: str
    load: tuple[float, ...]  # heap heights above the rim along the box (uncovered) or tarp dome (covered)
    load_color: Color
    lid: bool  # covered by a hinged metal lid rather than a tarp
    mud: tuple[tuple[float, float, float, float, int], ...]  # (s, t, rs, rt, colour) in face fractions
    stones: tuple[tuple[float, float, float, int], ...]  # (s, t, r, shade) on the heap

    @classmethod
    def sample(cls, rng: np.random.Generator, look: str) -> Truck:
        if look not in TRUCK_LOOKS:
            raise ValueError(f"truck look must be one of {TRUCK_LOOKS}, got {look!r}")
        box_color = _pick(rng, _BOX_COLORS)
        cab_color = box_color if rng.random() < 0.4 else _pick(rng, _CAB_COLORS)
        if look == "uncovered":
            peaks = rng.uniform(0.45, 1.1, 7) * np.hanning(9)[1:-1] ** 0.35
            load = tuple(float(v) for v in peaks)
            load_color = _pick(rng, _EARTH)
        else:
            load = tuple(float(v) for v in 0.14 * np.hanning(9)[1:-1])
            load_color = _pick(rng, _TARPS)
        mud: tuple = ()
        if look == "dirty":
            n = int(rng.integers(16, 30))
            mud = tuple(
                (
                    float(rng.uniform(0, 1)),
                    float(rng.uniform(0, 0.7) ** 1.5),
                    float(rng.uniform(0.02, 0.08)),
                    float(rng.uniform(0.05, 0.18)),
                    int(rng.integers(len(_MUD))),
                )
                for _ in range(n)
            )
        stones = tuple(
            (
                float(rng.uniform(0.05, 0.95)),
                float(rng.uniform(0.1, 0.8)),
                float(rng.uniform(0.05, 0.14)),
                int(rng.integers(2)),
            )
            for _ in range(int(rng.integers(6, 14)) if look == "uncovered" else 0)
        )
        return cls(
            look=look,
            length=float(rng.uniform(7.5, 9.5)),
            cab_len=float(rng.uniform(2.1, 2.45)),
            cab_h=float(rng.uniform(2.95, 3.35)),
            box_top=float(rng.uniform(2.6, 3.05)),
            cab_color=cab_color,
            box_color=box_color,
            accent=_pick(rng, ((245, 245, 245), (30, 30, 30), (30, 200, 240), (40, 40, 200))),
            plate=random_plate(rng, truck=True),
            load=load,
            load_color=load_color,
            lid=look == "covered" and rng.random() < 0.35,
            mud=mud,
            stones=stones,
        )

    @property
    def label(self) -> str:
        return LOOK_LABEL[self.look]

    @property
    def unseen_label(self) -> str | None:
        """The label when the parts that show this look (heap, mud) are out of view: a plain truck, as a
        person labelling the frame would see it; None when the look needs no visible evidence."""
        return LOOK_LABEL["clean"] if self.look in ("uncovered", "dirty") else None

    @property
    def height_m(self) -> float:
        return max(self.cab_h, self.box_top + max(self.load))

    @property
    def half_extent(self) -> tuple[float, float]:
        return self.length / 2, 1.25

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        f = Local(x, z, heading)
        L, W = self.length / 2, 1.25
        draw_box(p, f, -L + 0.3, L - 0.4, 0.55, 1.2, -W + 0.25, W - 0.25, (35, 35, 35))
        b = _side_b(p, f, W - 0.05)
        box_a1 = L - self.cab_len - 0.2
        parts = [self._draw_box_body, self._draw_cab]
        if _end_visible(p, f, -L):  # seen from behind, the box is nearer than the cab
            parts.reverse()
        for part in parts:
            part(p, f, L, W, box_a1)
        for a in (L - self.cab_len * 0.55, -L + 1.3, -L + 2.65):
            if self.look == "dirty":
                self._mud_on_wheel(p, f, a, b)
            else:
                _wheel(p, f, a, b, 0.52, (160, 160, 160))

    def _draw_cab(self, p: Painter, f: Local, L: float, W: float, box_a1: float) -> None:
        a0 = L - self.cab_len
        faces = draw_box(p, f, a0, L, 0.6, self.cab_h, -W, W, self.cab_color)
        b = _side_b(p, f, W + 0.005)
        cab_top = self.cab_h
        side = [
            [a0 + 0.35, cab_top * 0.62, b],
            [L - 0.12, cab_top * 0.62, b],
            [L - 0.12, cab_top - 0.18, b],
            [a0 + 0.35, cab_top - 0.18, b],
        ]
        p.wpoly(f.world(side), _GLASS)
        stripe = [[a0, 1.35, b], [L, 1.35, b], [L, 1.5, b], [a0, 1.5, b]]
        p.wpoly(f.world(stripe), self.accent)
        front = faces.get("front")
        if front is not None:
            h, w = front.height, front.width
            front.rect(p, 0.12, w - 0.12, h * 0.55, h * 0.92, _GLASS)
            front.rect(p, 0.0, w, 0.0, 0.22, (50, 50, 50))
            front.rect(p, 0.1, 0.45, 0.3, 0.5, (210, 235, 240))
            front.rect(p, w - 0.45, w - 0.1, 0.3, 0.5, (210, 235, 240))
            front.rect(p, w / 2 - 0.5, w / 2 + 0.5, 0.6, 1.0, (60, 60, 60))
            _plate(p, front, self.plate, True, 0.24)
            self._mud_on(p, front, 0.45)
        for name in ("left", "right"):
            if name in faces:
                self._mud_on(p, faces[name], 0.5)

    def _draw_box_body(self, p: Painter, f: Local, L: float, W: float, box_a1: float) -> None:
        y0, y1 = 1.2, self.box_top
        faces = draw_box(p, f, -L, box_a1, y0, y1, -W, W, self.box_color, top=(50, 50, 50))
        dark = tuple(int(c * 0.6) for c in self.box_color)
        for name in ("left", "right"):
            face = faces.get(name)
            if face is None:
                continue
            for s in np.arange(0.5, face.width - 0.2, 0.75):
                face.rect(p, s, s + 0.07, 0.0, face.height, dark)
            face.rect(p, 0, face.width, face.height - 0.16, face.height, dark)
            self._mud_on(p, face, 0.62)
        back = faces.get("back")
        if back is not None:
            w = back.width
            back.rect(p, w / 2 - 0.03, w / 2 + 0.03, 0, back.height, dark)
            back.rect(p, 0, w, back.height - 0.16, back.height, dark)
            back.rect(p, 0.1, 0.4, 0.05, 0.25, (30, 30, 200))
            back.rect(p, w - 0.4, w - 0.1, 0.05, 0.25, (30, 30, 200))
            _plate(p, back, self.plate, True, 0.3)
            self._mud_on(p, back, 0.6)
        self._draw_load(p, f, -L, box_a1, W)

    def _draw_load(self, p: Painter, f: Local, a0: float, a1: float, W: float) -> None:
        top = self.box_top
        cam = p.cam.position
        n = len(self.load)
        a = np.linspace(a0 + 0.15, a1 - 0.15, n)
        if self.look in ("clean", "dirty"):
            if cam[1] > top:
                p.wpoly(top_corners(f, a0 + 0.12, a1 - 0.12, top, -W + 0.12, W - 0.12), (40, 40, 45))
            return
        heights = np.asarray(self.load)
        if self.look == "covered":
            color = self.box_color if self.lid else self.load_color
            ring = np.concatenate(
                [
                    np.stack([a, top + heights, np.full(n, -W - 0.05)], 1),
                    np.stack([a[::-1], top + heights[::-1], np.full(n, W + 0.05)], 1),
                ]
            )
            p.wpoly(f.world(ring), p.shade(color, UP))
            b = _side_b(p, f, W + 0.06)
            skirt = [
                [a0 - 0.05, top - 0.3, b],
                [a1 + 0.05, top - 0.3, b],
                [a1 + 0.05, top + 0.05, b],
                [a0 - 0.05, top + 0.05, b],
            ]
            p.wpoly(f.world(skirt), p.shade(color, f.eb * np.sign(b)))
            rope = (20, 20, 20) if not self.lid else tuple(int(c * 0.6) for c in color)
            for ai in np.linspace(a0 + 0.4, a1 - 0.4, 6):
                p.wline(f.world([[ai, top - 0.3, b]])[0], f.world([[ai, top + 0.12, 0.0]])[0], rope, 0.05)
            return
        with p.evidence():
            self._draw_heap(p, f, a, a0, a1, W)

    def _draw_heap(self, p: Painter, f: Local, a: np.ndarray, a0: float, a1: float, W: float) -> None:
        """A ridge of earth along the box, sloping down to both rims; stones on the near slope."""
        top, n, heights = self.box_top, len(self.load), np.asarray(self.load)
        earth = self.load_color
        near = _side_b(p, f, W - 0.05)
        ridge = np.stack([a, top + heights, np.zeros(n)], 1)
        ends = [[a0 + 0.05, top, 0.0], [a1 - 0.05, top, 0.0]]
        for b, shade in ((-near, 0.7), (near, 1.0)):
            rim = np.stack([a, np.full(n, top), np.full(n, b)], 1)
            slope = np.concatenate(
                [[[a0 + 0.05, top, b]], rim, [[a1 - 0.05, top, b]], [ends[1]], ridge[::-1], [ends[0]]]
            )
            p.wpoly(f.world(slope), tuple(int(c * shade) for c in earth))
        for end, sign in ((a0, -1), (a1, 1)):
            if _end_visible(p, f, end):
                inner = end - 0.05 * sign
                cap = [[inner, top, -W + 0.05], [inner, top, W - 0.05], ridge[0 if sign < 0 else -1]]
                p.wpoly(f.world(cap), tuple(int(c * 0.85) for c in earth))
        ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        for s, t, r, dark in self.stones:
            i = min(n - 1, int(s * n))
            centre = np.array([a[i], top, near]) + t * (ridge[i] - [a[i], top, near])
            pts = centre + np.stack([r * np.cos(ang), r * 0.8 * np.sin(ang), np.zeros(8)], 1)
            p.wpoly(f.world(pts), (40, 45, 50) if dark else (150, 160, 165))

    def _mud_on(self, p: Painter, face: Face, reach: float) -> None:
        """Mud splashes up to `reach` of the face's height, densest at the bottom."""
        if not self.mud:
            return
        w, h = face.width, face.height
        band = np.linspace(0, w, 12)
        edge = h * reach * (0.35 + 0.2 * np.sin(band * 2.3 + self.mud[0][0] * 6))
        with p.evidence():
            face.poly(p, np.concatenate([[0], band, [w]]), np.concatenate([[0], edge, [0]]), _MUD[1])
            for s, t, rs, rt, c in self.mud:
                face.ellipse(p, s * w, t * h * reach * 1.3, rs * w * 0.25, rt * h, _MUD[c], n=10)

    def _mud_on_wheel(self, p: Painter, f: Local, a: float, b: float) -> None:
        ang = np.linspace(0, np.pi, 9)
        pts = np.stack([a + 0.6 * np.cos(ang), 0.52 + 0.62 * np.sin(ang), np.full(9, b)], 1)
        with p.evidence():
            p.wpoly(f.world(pts), _MUD[2])
            _wheel(p, f, a, b, 0.52, _MUD[1])
