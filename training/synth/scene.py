"""Compose a street scene: camera, layout, placed sprites, rendering and the labels that survive occlusion.

A label is the object's full box clipped to the image; it is dropped when less than `MIN_VISIBLE` of the
object shows (hidden behind nearer objects or outside the frame) or when it is under `MIN_SIDE_PX`. Its
class is what the frame shows: a sprite whose look rests on evidence (a truck's earth heap or mud) takes
its `unseen_label` when too little of that evidence is in view, as a truck seen head-on hides its load.

>>> import numpy as np
>>> img, labels = render_sample(np.random.default_rng(5), (320, 180))
>>> img.shape, all(0 <= l.box[0] < l.box[2] <= 320 for l in labels)
((180, 320, 3), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from pipeline.taxonomy import CLASSES
from training.synth.camera import Camera
from training.synth.effects import Conditions
from training.synth.items import Cart, Chair, Goods, Stall, Table, Umbrella
from training.synth.painter import SCENERY_ID, Painter
from training.synth.people import Person
from training.synth.street import Backdrop, StreetLayout, draw_prop, render_backdrop, scenery_props
from training.synth.vehicles import TRUCK_LOOKS, Car, Truck

MIN_VISIBLE = 0.35
MIN_SIDE_PX = 8.0
MIN_EVIDENCE_PX = 20  # a look needs at least this many visible evidence pixels ...
MIN_EVIDENCE_SHARE = 0.04  # ... and at least this share of the object's visible pixels
MIN_OBJECTS = 4  # a dataset scene with fewer placed objects is drawn again
MAX_REDRAWS = 6
BLOCKER_TRIES = 12  # spots tried in front of a hidden pile for its chair, stool or table
PARTLY_HIDDEN = (0.2, 0.6)  # share of a hidden pile's screen box its blocker's box covers
PROP_MIN_DEPTH = 9.0
MAX_HEIGHT_SHARE = 0.85  # nothing placed taller than this share of the frame (~300 px at 360)
# Objects run from about 24 px tall (the generator's brief); placement leaves a little room for pose.
MIN_PLACED_PX = 22.0
CLASS_ID = {name: i for i, name in enumerate(CLASSES)}


class Sprite(Protocol):
    label: str

    @property
    def height_m(self) -> float: ...

    @property
    def half_extent(self) -> tuple[float, float]: ...

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None: ...


@dataclass
class Placed:
    """A sprite standing at (x, z) facing `heading`; `phase` animates walkers."""

    sprite: Sprite
    x: float
    z: float
    heading: float = 0.0
    phase: float = 0.0


@dataclass(frozen=True)
class Label:
    """One labelled object: class id, pixel box (x0, y0, x1, y1), and the index of its `Placed`."""

    class_id: int
    box: tuple[float, float, float, float]
    index: int

    def yolo(self, width: int, height: int) -> str:
        x0, y0, x1, y1 = self.box
        return (
            f"{self.class_id} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
        )


def sample_camera(rng: np.random.Generator, layout: StreetLayout, size: tuple[int, int]) -> Camera:
    """Either across the street from the near sidewalk, or along the far sidewalk from a shop-side pole."""
    w, h = size
    focal = (w / 2) / math.tan(math.radians(rng.uniform(50, 80)) / 2)
    if rng.random() < 0.62:
        z = rng.uniform(layout.near_wall + 0.5, layout.road[0] + 1.0)
        yaw, pitch, height = rng.uniform(-55, 55), rng.uniform(8, 24), rng.uniform(4.0, 9.0)
    else:
        z = layout.road[1] - rng.uniform(-0.5, 1.5)
        yaw = rng.choice([-1, 1]) * rng.uniform(55, 78)
        pitch, height = rng.uniform(12, 28), rng.uniform(4.0, 8.0)
    return Camera(w, h, focal=focal, height=height, yaw_deg=float(yaw), pitch_deg=float(pitch), z=float(z))


class Ground:
    """Free-space bookkeeping on the ground plane, so sprites do not stand inside each other."""

    def __init__(self, cam: Camera, rng: np.random.Generator):
        self.cam, self.rng = cam, rng
        self._taken: list[tuple[float, float, float, float]] = []

    @staticmethod
    def footprint(sprite: Sprite, x: float, z: float, heading: float) -> tuple[float, float, float, float]:
        ha, hb = sprite.half_extent
        c, s = abs(math.cos(heading)), abs(math.sin(heading))
        rx, rz = c * ha + s * hb, s * ha + c * hb
        return x - rx, x + rx, z - rz, z + rz

    def free(self, rect: tuple[float, float, float, float]) -> bool:
        return all(rect[1] <= t[0] or t[1] <= rect[0] or rect[3] <= t[2] or t[3] <= rect[2] for t in self._taken)

    def take(self, sprite: Sprite, x: float, z: float, heading: float, min_px: float = MIN_PLACED_PX) -> bool:
        """Claim the spot when the sprite standing there is free of others, in view and `min_px` tall or more."""
        rect = self.footprint(sprite, x, z, heading)
        if not (self._fits_view(sprite, rect, min_px) and self.free(rect)):
            return False
        self._taken.append(rect)
        return True

    def screen_box(self, sprite: Sprite, rect: tuple[float, float, float, float]) -> tuple[float, ...] | None:
        """Pixel box (u0, v0, u1, v1) of `sprite` standing on footprint `rect`; None when it nears the lens."""
        x0, x1, z0, z1 = rect
        corners = np.array([[x, y, z] for x in (x0, x1) for z in (z0, z1) for y in (0.0, sprite.height_m)])
        if (self.cam.to_camera(corners)[:, 2] < 2.0).any():
            return None
        uv, _ = self.cam.project(corners)
        return (*uv.min(0), *uv.max(0))

    def _fits_view(self, sprite: Sprite, rect: tuple[float, float, float, float], min_px: float) -> bool:
        """Mostly inside the frame, feet not cut off, between `min_px` and MAX_HEIGHT_SHARE of the frame tall."""
        box = self.screen_box(sprite, rect)
        if box is None:
            return False
        u0, v0, u1, v1 = box
        w, h = self.cam.width, self.cam.height_px
        inside = max(0.0, min(u1, w) - max(u0, 0)) * max(0.0, min(v1, h) - max(v0, 0))
        return min_px <= v1 - v0 <= MAX_HEIGHT_SHARE * h and v1 <= h * 1.03 and inside >= 0.6 * (u1 - u0) * (v1 - v0)

    def place(
        self,
        sprite: Sprite,
        zrange: tuple[float, float],
        heading: float,
        min_px: float = MIN_PLACED_PX,
        tries: int = 25,
    ) -> Placed | None:
        """A free spot in the cross-street band `zrange` where the sprite is in view and at least `min_px` tall."""
        cam = self.cam
        for _ in range(tries):
            z = float(self.rng.uniform(*zrange))
            x = cam.ground_x_at(float(self.rng.uniform(-0.05, 1.05) * cam.width), z)
            if x is not None and self.take(sprite, x, z, heading, min_px):
                return Placed(sprite, x, z, heading, float(self.rng.uniform(0, 2 * math.pi)))
        return None


def populate(rng: np.random.Generator, layout: StreetLayout, cam: Camera, hidden_piles: int = 0) -> list[Placed]:
    """A random but plausible street: traffic in lanes, people on sidewalks, occupation items by the shops;
    and `hidden_piles` more piles of goods, each with a chair, stool or table put out just in front of it."""
    ground = Ground(cam, rng)
    placed: list[Placed] = []

    def add(item: Placed | None) -> None:
        if item is not None:
            placed.append(item)

    for _ in range(int(rng.choice([0, 1, 2, 2, 3, 3]))):
        look = str(rng.choice(TRUCK_LOOKS, p=[0.15, 0.15, 0.33, 0.37]))
        zc, direction = layout.lanes[int(rng.integers(len(layout.lanes)))]
        add(ground.place(Truck.sample(rng, look), (zc - 0.2, zc + 0.2), 0.0 if direction > 0 else math.pi, 26))
    for _ in range(int(rng.integers(0, 4))):
        zc, direction = layout.lanes[int(rng.integers(len(layout.lanes)))]
        add(ground.place(Car.sample(rng), (zc - 0.2, zc + 0.2), 0.0 if direction > 0 else math.pi, 20))

    walks = (layout.far_walk, layout.near_walk)
    far = (layout.far_walk[0] + 0.4, layout.far_walk[1] - 0.3)
    front = (layout.far_wall - layout.line_depth + 0.3, layout.far_wall - 0.4)
    for _ in range(int(rng.integers(2, 8))):
        if rng.random() < 0.15:
            add(ground.place(Person.sample(rng), layout.road, rng.choice([-1, 1]) * math.pi / 2))
        else:
            z0, z1 = walks[int(rng.random() < 0.35)]
            add(ground.place(Person.sample(rng), (z0 + 0.3, z1 - 0.3), float(rng.choice([0, math.pi, math.pi / 2]))))

    def band() -> tuple[float, float]:
        if rng.random() < 0.75:
            return front if rng.random() < 0.6 else far
        return layout.near_walk[0] + 0.5, layout.near_walk[1] - 0.4

    along = lambda: float(rng.choice([0.0, math.pi]) + rng.normal(0, 0.15))  # noqa: E731
    for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.5 else 0):
        add(ground.place(Stall.sample(rng), band(), along()))
    for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.5 else 0):
        add(ground.place(Cart.sample(rng), band(), float(rng.uniform(0, 2 * math.pi))))
    for _ in range(int(rng.integers(1, 4)) if rng.random() < 0.5 else 0):
        add(ground.place(Goods.sample(rng), band(), along(), 18))
    want_table, want_chair, want_umbrella = (rng.random() < 0.5 for _ in range(3))
    for _ in range(int(rng.integers(1, 3)) if (want_table or want_chair or want_umbrella) else 0):
        placed.extend(_cafe_set(rng, ground, band(), want_table, want_chair, want_umbrella))
    for _ in range(hidden_piles):
        placed.extend(_hidden_pile(rng, ground, band(), along()))
    return placed


def _hidden_pile(rng: np.random.Generator, ground: Ground, zrange: tuple[float, float], heading: float) -> list[Placed]:
    """A pile of goods with a chair, stool or table put out just in front of it, covering PARTLY_HIDDEN of
    its screen box: the pile shows above or beside it. Spots in front are retried until one covers that
    much, since a pile left bare or wholly hidden (then unlabelled) teaches nothing new."""
    pile = ground.place(Goods.sample(rng), zrange, heading, 18)
    if pile is None:
        return []
    pile_box = ground.screen_box(pile.sprite, ground.footprint(pile.sprite, pile.x, pile.z, pile.heading))
    dx, dz = ground.cam.position[0] - pile.x, ground.cam.position[2] - pile.z
    norm = math.hypot(dx, dz)
    toward, side = np.array([dx, dz]) / norm, np.array([-dz, dx]) / norm
    for _ in range(BLOCKER_TRIES):
        blocker = _blocker(rng)
        gap = max(pile.sprite.half_extent) + max(blocker.half_extent) + float(rng.uniform(0.05, 0.5))
        x, z = (np.array([pile.x, pile.z]) + toward * gap + side * float(rng.normal(0, 0.2))).tolist()
        turn = float(rng.uniform(0, 2 * math.pi))
        box = ground.screen_box(blocker, ground.footprint(blocker, x, z, turn))
        if (
            pile_box is not None
            and box is not None
            and PARTLY_HIDDEN[0] <= _share_covered(pile_box, box) <= PARTLY_HIDDEN[1]
            and ground.take(blocker, x, z, turn, min_px=18)
        ):
            return [pile, Placed(blocker, x, z, turn)]
    return [pile]


def _share_covered(box: tuple[float, ...], by: tuple[float, ...]) -> float:
    w = max(0.0, min(box[2], by[2]) - max(box[0], by[0]))
    h = max(0.0, min(box[3], by[3]) - max(box[1], by[1]))
    return w * h / max(1e-6, (box[2] - box[0]) * (box[3] - box[1]))


def _blocker(rng: np.random.Generator) -> Sprite:
    """Furniture put out in front of a pile. Low pieces (stools, tables) come up as often as chairs: over
    them the pile's top shows like a backrest or a table top, the look the detector must learn apart."""
    pick = rng.random()
    if pick < 0.35:
        return Table.sample(rng)
    chair = Chair.sample(rng)
    return replace(chair, style="stool") if pick < 0.7 else chair


def _cafe_set(
    rng: np.random.Generator, ground: Ground, zrange: tuple[float, float], table: bool, chair: bool, umbrella: bool
) -> list[Placed]:
    """A shop-front cluster: a table (maybe under an umbrella) with chairs around it, or just some of these."""
    anchor = Table.sample(rng) if table else (Umbrella.sample(rng) if umbrella else Chair.sample(rng))
    first = ground.place(anchor, zrange, float(rng.choice([0.0, math.pi / 2])))
    if first is None:
        return []
    out = [first]
    if umbrella and table:
        out.append(Placed(Umbrella.sample(rng), first.x, first.z + 0.01, 0.0))
    if chair:
        for k in range(int(rng.integers(1, 5))):
            ang = first.heading + k * math.pi / 2 + rng.normal(0, 0.2)
            x, z = first.x + 0.85 * math.cos(ang), first.z + 0.85 * math.sin(ang)
            sprite = Chair.sample(rng)
            if ground.take(sprite, x, z, ang):
                out.append(Placed(sprite, x, z, ang + math.pi))
    return out


def render(
    cam: Camera,
    layout: StreetLayout,
    backdrop: Backdrop,
    placed: list[Placed],
    cond: Conditions,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[Label]]:
    """Paint `placed` (and the street props) far to near over the backdrop, apply conditions, label."""
    p, labels = paint(cam, layout, backdrop, placed)
    lit = backdrop.emissive * (p.ids == 0)
    img = cond.apply(p.img, lit, backdrop.lamps, cam.horizon_y, rng)
    return img, labels


def paint(cam: Camera, layout: StreetLayout, backdrop: Backdrop, placed: list[Placed]) -> tuple[Painter, list[Label]]:
    """The scene painted before capture conditions: the painter (pixels and the id map that says which
    object owns each pixel, `Label.index + 1`) and the labels that survive occlusion."""
    if len(placed) >= SCENERY_ID:
        raise ValueError(f"at most {SCENERY_ID - 1} objects per frame, got {len(placed)}")
    p = Painter(backdrop.image.copy(), cam)
    p.light = _sun(layout)
    drawables: list[tuple[float, int, object]] = [(cam.depth(o.x, o.z), i, o) for i, o in enumerate(placed)]
    # Props right under the lens would blot out the view; real poles are mounted clear of them.
    drawables += [
        (d, -1, (kind, x, z)) for kind, x, z in scenery_props(layout) if (d := cam.depth(x, z)) > PROP_MIN_DEPTH
    ]
    strokes = {}
    for depth, i, item in sorted(drawables, key=lambda d: -d[0]):
        if depth < 1.0:
            continue
        if i < 0:
            draw_prop(p, *item)
            continue
        p.begin(i + 1)
        item.sprite.draw(p, item.x, item.z, item.heading, item.phase)
        strokes[i] = p.end()
    visible = np.bincount(p.ids.ravel(), minlength=256)
    evidence = np.bincount(p.ids[p.marks == 1], minlength=256)
    labels = []
    for i, stroke in strokes.items():
        x0, y0, x1, y1 = stroke.box
        if stroke.pixels == 0 or x1 - x0 < MIN_SIDE_PX or y1 - y0 < MIN_SIDE_PX:
            continue
        fx0, fy0, fx1, fy1 = stroke.full_box
        in_frame = (x1 - x0) * (y1 - y0) / max(1e-6, (fx1 - fx0) * (fy1 - fy0))
        if visible[i + 1] / stroke.pixels * in_frame < MIN_VISIBLE:
            continue
        label = visible_label(placed[i].sprite, int(evidence[i + 1]), int(visible[i + 1]))
        labels.append(Label(CLASS_ID[label], stroke.box, i))
    return p, labels


def visible_label(sprite: Sprite, evidence_px: int, visible_px: int) -> str:
    """The class a labeller would give `sprite` seeing `evidence_px` of its look-defining pixels among
    `visible_px` visible ones.

    >>> from training.synth.vehicles import Truck
    >>> t = Truck.sample(np.random.default_rng(0), "uncovered")
    >>> visible_label(t, 300, 4000), visible_label(t, 5, 4000)
    ('truck_uncovered', 'truck')
    """
    unseen = getattr(sprite, "unseen_label", None)
    if unseen is None or evidence_px >= max(MIN_EVIDENCE_PX, MIN_EVIDENCE_SHARE * visible_px):
        return sprite.label
    return unseen


def _sun(layout: StreetLayout) -> np.ndarray:
    v = np.array([0.4 * math.cos(layout.road[1]), 0.85, -0.45])
    return v / np.linalg.norm(v)


def render_sample(
    rng: np.random.Generator, size: tuple[int, int], hidden_piles: int = 0
) -> tuple[np.ndarray, list[Label]]:
    """One fresh random scene, as a dataset image with its labels (redrawn while it shows too little);
    `hidden_piles`: see `populate`."""
    for _ in range(MAX_REDRAWS):
        layout = StreetLayout.sample(rng)
        cam = sample_camera(rng, layout, size)
        placed = populate(rng, layout, cam, hidden_piles)
        if len(placed) >= MIN_OBJECTS:
            break
    cond = Conditions.sample(rng)
    backdrop = render_backdrop(layout, cam, night=cond.time == "night")
    return render(cam, layout, backdrop, placed, cond, rng)
