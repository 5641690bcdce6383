"""Scenario planning: one fixed camera, its zones, and a timeline of occupation episodes, vehicle passages
and decoys, with every actor's motion. Planning renders nothing, so the zones of a scenario (and of the
demo points) are known cheaply.

Ground-truth rules followed here (the pipeline implements the same):
- an occupation episode is items of one subtype standing still in one no-occupation zone for longer than
  the dwell time; two episodes of one subtype in one zone are at least `EPISODE_GAP_S` apart;
- decoys (loiterers, short stays, passing carts, clean or covered trucks, cars) never raise events;
- vehicles pass one at a time, so a tracker cannot swap them.

>>> plan = plan_scenario(ScenarioSpec(name="t", seed=3, kind="road"))
>>> [z.kind for z in plan.zones], sorted({p.kind for p in plan.passages})
(['roadway'], ['car', 'clean', 'covered', 'dirty', 'uncovered'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from training.synth.camera import Camera
from training.synth.effects import Conditions
from training.synth.items import Cart, Chair, Goods, Stall, Table, Umbrella
from training.synth.motion import Motion
from training.synth.people import Person
from training.synth.scene import Ground, Sprite
from training.synth.street import StreetLayout, ZoneRect
from training.synth.vehicles import Car, Truck

EPISODE_GAP_S = 20.0  # same subtype, same zone: episodes at least this far apart
DWELL_MARGIN_S = 10.0  # episodes outlast the dwell time by at least this much
# The smallest occupation item (a chair) in a zone is at least this tall on screen.
MIN_ITEM_PX = {"mixed": 28.0, "street": 30.0, "road": 28.0}
TRUCK_TOP_M, MAX_TRUCK_SHARE = 4.2, 0.8
ROAD_SHARE = {"mixed": 0.2, "street": 0.08, "road": 0.35}  # least share of the frame the roadway zone covers


class NoCameraError(RuntimeError):
    """No camera pose of the drawn street sees the scenario's zones well enough at its frame size."""


class ScenarioSpec(BaseModel):
    """What to generate; validated here because it comes straight from the command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Folder name of the scenario.")
    seed: int = Field(ge=0, description="All randomness of the scenario derives from it.")
    duration_s: float = Field(default=150.0, ge=20, le=3600, description="Video length in seconds.")
    dwell_s: float = Field(default=30.0, ge=5, le=600, description="Occupation dwell time of the point.")
    fps: int = Field(default=5, ge=1, le=30, description="Video frame rate.")
    size: tuple[int, int] = Field(default=(640, 360), description="Frame width and height, even pixels.")
    kind: Literal["mixed", "street", "road"] = Field(
        default="mixed", description="mixed: shop fronts and roadway; street: occupation; road: trucks."
    )


@dataclass
class Actor:
    """A tracked object of the scenario: its look and where it is over time."""

    id: int
    sprite: Sprite
    motion: Motion


@dataclass
class Episode:
    """Ground truth of one occupation event (times in seconds from frame 0)."""

    subtype: str
    zone_id: str
    start_s: float
    end_s: float
    actor_ids: list[int]


@dataclass
class Decoy:
    kind: str
    zone_id: str | None
    start_s: float
    end_s: float
    actor_ids: list[int]


@dataclass
class Passage:
    """One vehicle crossing the view; `kind` is a truck look or "car"."""

    kind: str
    actor_id: int
    plate: str


@dataclass
class Plan:
    spec: ScenarioSpec
    layout: StreetLayout
    cam: Camera
    cond: Conditions
    zones: list[ZoneRect]
    actors: list[Actor] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    decoys: list[Decoy] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)

    def add(self, sprite: Sprite, motion: Motion) -> int:
        actor = Actor(len(self.actors) + 1, sprite, motion)
        self.actors.append(actor)
        return actor.id


class _ZoneBook:
    """Which ground rectangles of which zone are taken when, and when each subtype last stood there."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float, float, tuple[float, float, float, float]]] = []
        self.spans: list[tuple[str, str, float, float]] = []  # zone, subtype, start, end

    def free(self, zone: str, t0: float, t1: float, rect: tuple[float, float, float, float]) -> bool:
        for z, a, b, r in self.taken:
            if (
                z == zone
                and a < t1 + 2
                and t0 < b + 2
                and not (rect[1] <= r[0] or r[1] <= rect[0] or rect[3] <= r[2] or r[3] <= rect[2])
            ):
                return False
        return True

    def gap_ok(self, zone: str, subtype: str, t0: float, t1: float) -> bool:
        return all(
            not (z == zone and s == subtype and a < t1 + EPISODE_GAP_S and t0 < b + EPISODE_GAP_S)
            for z, s, a, b in self.spans
        )


def plan_scenario(spec: ScenarioSpec) -> Plan:
    """Lay out the street, pick a camera that sees its zones well, and fill the timeline."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x5CE2]))
    layout, cam, zones = _camera_and_zones(rng, spec)
    # The demo-style kinds are shot in clear daylight; generic scenarios get any time and weather.
    fixed = spec.kind != "mixed"
    cond = Conditions.sample(rng, time="day" if fixed else None, weather="clear" if fixed else None)
    if fixed:
        cond = replace(cond, blur=0, jpeg=100)
    plan = Plan(spec, layout, cam, cond, zones)
    book = _ZoneBook()
    shop_zones = [z for z in zones if z.kind == "no_occupation"]
    if shop_zones:
        subtypes = ["stall", "shopfront", "goods"]
        rng.shuffle(subtypes)
        extra = 1 if spec.kind == "street" else int(rng.integers(0, 2))
        wanted = subtypes + [str(rng.choice(["stall", "shopfront", "goods"])) for _ in range(extra)]
        for i, subtype in enumerate(wanted):
            _add_episode(rng, plan, book, subtype, shop_zones, (i / len(wanted), (i + 1) / len(wanted)))
        for kind, count in (("loiter", 1 + int(rng.random() < 0.6)), ("short_stay", 2), ("passing_cart", 2)):
            for _ in range(count):
                _add_zone_decoy(rng, plan, book, kind, shop_zones)
    _add_traffic(rng, plan)
    _add_walkers(rng, plan)
    plan.episodes.sort(key=lambda e: e.start_s)
    plan.decoys.sort(key=lambda d: d.start_s)
    return plan


def _camera_and_zones(rng: np.random.Generator, spec: ScenarioSpec) -> tuple[StreetLayout, Camera, list[ZoneRect]]:
    w, h = spec.size
    want_shops = {"mixed": 1, "street": 2, "road": 0}[spec.kind]
    for _ in range(1000):
        lanes = 2 if spec.kind == "street" else 3
        layout = StreetLayout.sample(rng, max_lanes=lanes, far_walk=(4.5, 6.5), line_depth=(2.0, 2.6))
        focal = (w / 2) / math.tan(math.radians(rng.uniform(55, 70)) / 2)
        # Mounted on the near buildings looking over the roadway; a shop-street camera stands on a pole near
        # the kerb, closer to the shops it watches, and looks down more steeply.
        z_range = {"road": (-8.0, 1.5), "mixed": (-3.0, 1.5), "street": (layout.road[0] - 3.0, layout.road[0])}
        pitch_range = {"road": (10, 18), "mixed": (12, 20), "street": (20, 32)}
        z, height = rng.uniform(*z_range[spec.kind]), rng.uniform(5, 8)
        yaw = rng.uniform(-22, 22) if spec.kind == "road" else rng.uniform(-30, 30)
        pitch = rng.uniform(*pitch_range[spec.kind])
        cam = Camera(w, h, focal=focal, height=float(height), yaw_deg=float(yaw), pitch_deg=float(pitch), z=float(z))
        road = layout.roadway_zone()
        seen = road.to_pixels(cam)
        if seen is None or cv2.contourArea(np.float32(seen)) < ROAD_SHARE[spec.kind] * w * h:
            continue
        if len(_usable_lanes(cam, layout)) < (2 if spec.kind == "road" else 1):
            continue
        shops = (
            [zr for zr in layout.shop_zones() if _fully_in_view(cam, zr, MIN_ITEM_PX[spec.kind])] if want_shops else []
        )
        if len(shops) < want_shops:
            continue
        if want_shops:
            picked = sorted(rng.choice(len(shops), size=min(len(shops), 2), replace=False))
            return layout, cam, [shops[i] for i in picked] + [road]
        return layout, cam, [road]
    raise NoCameraError(f"no camera found for scenario {spec.name} (seed {spec.seed}); try another seed")


def _usable_lanes(cam: Camera, layout: StreetLayout) -> list[tuple[float, int]]:
    """Lanes where a truck crossing mid-frame stays under MAX_TRUCK_SHARE of the frame height."""
    out = []
    for zc, direction in layout.lanes:
        x = cam.ground_x_at(cam.width / 2, zc)
        if x is not None and cam.focal * TRUCK_TOP_M / cam.depth(x, zc) <= MAX_TRUCK_SHARE * cam.height_px:
            out.append((zc, direction))
    return out


def _fully_in_view(cam: Camera, zone: ZoneRect, min_px: float) -> bool:
    uv, depth = cam.project(zone.corners())
    inside = (uv[:, 0] > 8) & (uv[:, 0] < cam.width - 8) & (uv[:, 1] > 8) & (uv[:, 1] < cam.height_px - 8)
    far = float(depth.max())
    return bool(inside.all() and depth.min() > 3 and cam.focal * 0.88 / far >= min_px and zone.x1 - zone.x0 >= 3.5)


def _slot(rng: np.random.Generator, zone: ZoneRect, sprite: Sprite, heading: float) -> tuple[float, float] | None:
    """A spot whose whole footprint lies well inside the zone (so the box's bottom-centre does too)."""
    ha, hb = sprite.half_extent
    c, s = abs(math.cos(heading)), abs(math.sin(heading))
    rx, rz = c * ha + s * hb, s * ha + c * hb
    xs, zs = (zone.x0 + rx + 0.4, zone.x1 - rx - 0.4), (zone.z0 + rz + 0.3, zone.z1 - rz - 0.15)
    if xs[0] > xs[1] or zs[0] > zs[1]:
        return None
    return float(rng.uniform(*xs)), float(rng.uniform(*zs))


def _rect(sprite: Sprite, x: float, z: float, heading: float) -> tuple[float, float, float, float]:
    return Ground.footprint(sprite, x, z, heading)


def _frame_time(t: float, fps: float) -> float:
    return round(round(t * fps) / fps, 3)


def _add_episode(
    rng: np.random.Generator,
    plan: Plan,
    book: _ZoneBook,
    subtype: str,
    zones: list[ZoneRect],
    window: tuple[float, float],
) -> None:
    """Place one episode, starting within `window` (fractions of the possible start times) if it can, so
    that the episodes of a scenario spread over the video instead of crowding the same zones at once."""
    spec = plan.spec
    D, dwell = spec.duration_s, spec.dwell_s
    latest = D - dwell - DWELL_MARGIN_S - 2
    if latest < 2:
        return
    for attempt in range(80):
        zone = zones[int(rng.integers(len(zones)))]
        lo, hi = window if attempt < 40 else (0.0, 1.0)
        start = _frame_time(2 + (latest - 2) * rng.uniform(lo, hi), spec.fps)
        end = _frame_time(min(D, start + dwell + rng.uniform(DWELL_MARGIN_S + 2, DWELL_MARGIN_S + 45)), spec.fps)
        if not book.gap_ok(zone.id, subtype, start, end):
            continue
        group = _items(rng, subtype)
        spot = _slot(rng, zone, _Extent(_group_extent(group)), 0.0)
        if spot is None:
            continue
        placed = [(sp, spot[0] + dx, spot[1] + dz, hd, delay) for sp, dx, dz, hd, delay in group]
        rects = [_rect(sp, x, z, hd) for sp, x, z, hd, _ in placed]
        if not all(book.free(zone.id, start, end, r) for r in rects):
            continue
        ids = []
        for (sp, x, z, hd, delay), r in zip(placed, rects, strict=True):
            book.taken.append((zone.id, start, end, r))
            ids.append(plan.add(sp, Motion.still(_frame_time(start + delay, spec.fps), end, x, z, hd)))
        book.spans.append((zone.id, subtype, start, end))
        if subtype == "stall" and rng.random() < 0.7:
            _add_vendor(rng, plan, book, zone, placed[0], start, end)
        plan.episodes.append(Episode(subtype, zone.id, start, min(end, D), ids))
        return


class _Extent:
    """A stand-in sprite with a given footprint, for fitting a whole group into a zone."""

    def __init__(self, half: tuple[float, float]):
        self.half_extent = half


def _group_extent(group: list) -> tuple[float, float]:
    ha = max(abs(dx) + max(sp.half_extent) for sp, dx, dz, hd, _ in group)
    hb = max(abs(dz) + min(sp.half_extent) for sp, dx, dz, hd, _ in group)
    return ha, hb


def _items(rng: np.random.Generator, subtype: str) -> list[tuple[Sprite, float, float, float, float]]:
    """The sprites of one episode as (sprite, dx, dz, heading, appear delay s) around an anchor."""
    along = float(rng.choice([0.0, math.pi]))
    if subtype == "stall":
        return [(Stall.sample(rng) if rng.random() < 0.6 else Cart.sample(rng), 0.0, 0.0, along, 0.0)]
    if subtype == "goods":
        group = [(Goods.sample(rng), 0.0, 0.0, along, 0.0)]
        if rng.random() < 0.4:
            group.append((Goods.sample(rng), 1.6, 0.0, along, float(rng.uniform(1, 6))))
        return group
    style = rng.integers(3)
    if style == 0:  # chairs put out in a row
        return [
            (Chair.sample(rng), 0.75 * i, 0.0, float(rng.uniform(-0.4, 0.4) - math.pi / 2), 1.0 * i)
            for i in range(int(rng.integers(2, 4)))
        ]
    group = [(Table.sample(rng), 0.0, 0.0, 0.0, 0.0)]
    group += [
        (Chair.sample(rng), sgn * 0.9, 0.0, 0.0 if sgn < 0 else math.pi, float(rng.uniform(0.5, 3))) for sgn in (-1, 1)
    ]
    if style == 2:
        group.append((Umbrella.sample(rng), 0.0, 0.01, 0.0, float(rng.uniform(1, 4))))
    return group


def _add_vendor(
    rng: np.random.Generator, plan: Plan, book: _ZoneBook, zone: ZoneRect, item, start: float, end: float
) -> None:
    sp, x, z, hd, _ = item
    vx = x + (sp.half_extent[0] + 0.45) * (1 if rng.random() < 0.5 else -1)
    vz = min(zone.z1 - 0.3, z + 0.2)
    person = Person.sample(rng)
    if zone.x0 < vx < zone.x1 and book.free(zone.id, start, end, _rect(person, vx, vz, 0.0)):
        book.taken.append((zone.id, start, end, _rect(person, vx, vz, 0.0)))
        plan.add(
            person,
            Motion(
                [
                    (start, vx - 4.0, zone.z0 - 0.6),
                    (start + 3.5, vx, vz),
                    (end, vx, vz),
                    (end + 3.5, vx + 4.0, zone.z0 - 0.6),
                ]
            ),
        )


def _add_zone_decoy(rng: np.random.Generator, plan: Plan, book: _ZoneBook, kind: str, zones: list[ZoneRect]) -> None:
    spec = plan.spec
    D, dwell = spec.duration_s, spec.dwell_s
    for _ in range(60):
        zone = zones[int(rng.integers(len(zones)))]
        front_z = zone.z0 - 0.7  # the walkway just outside the painted line
        if kind == "loiter":
            if D < 30:
                return
            stay = float(rng.uniform(min(35.0, D / 2), min(90.0, D - 12)))
            t0 = _frame_time(rng.uniform(2, D - stay - 8), spec.fps)
            person = Person.sample(rng)
            x, z = float(rng.uniform(zone.x0 + 0.6, zone.x1 - 0.6)), float(rng.uniform(zone.z0 + 0.5, zone.z1 - 0.4))
            rect = _rect(person, x, z, 0.0)
            if not book.free(zone.id, t0, t0 + stay + 6, rect):
                continue
            book.taken.append((zone.id, t0, t0 + stay + 6, rect))
            side = 1 if rng.random() < 0.5 else -1
            motion = Motion(
                [
                    (t0, x - side * 4, front_z),
                    (t0 + 3, x, z),
                    (t0 + 3 + stay, x, z),
                    (t0 + 6 + stay, x + side * 4, front_z),
                ]
            )
            pid = plan.add(person, motion)
            plan.decoys.append(
                Decoy("loiter", zone.id, _frame_time(t0 + 3, spec.fps), _frame_time(t0 + 3 + stay, spec.fps), [pid])
            )
            return
        if kind == "short_stay":
            stay = float(rng.uniform(min(5.0, dwell * 0.5), min(20.0, dwell * 0.6)))
            t0 = _frame_time(rng.uniform(2, max(2.0, D - stay - 2)), spec.fps)
            t1 = _frame_time(t0 + stay, spec.fps)
            sprite = Goods.sample(rng)
            spot = _slot(rng, zone, sprite, 0.0)
            if spot is None or not book.gap_ok(zone.id, "goods", t0, t1):
                continue
            rect = _rect(sprite, *spot, 0.0)
            if not book.free(zone.id, t0, t1, rect):
                continue
            book.taken.append((zone.id, t0, t1, rect))
            book.spans.append((zone.id, "goods", t0, t1))
            gid = plan.add(sprite, Motion.still(t0, t1, spot[0], spot[1], 0.0))
            plan.decoys.append(Decoy("short_stay", zone.id, t0, t1, [gid]))
            return
        # passing_cart: pushed along the strip, never stopping; needs the whole strip free meanwhile.
        speed = float(rng.uniform(0.8, 1.3))
        cart = Cart.sample(rng)
        z = (zone.z0 + zone.z1) / 2
        direction = 1 if rng.random() < 0.5 else -1
        xa, xb = (zone.x0 - 3, zone.x1 + 3)[::direction]
        span = abs(xb - xa) / speed
        if span > D - 4:
            return
        t0 = _frame_time(rng.uniform(2, D - span - 2), spec.fps)
        strip = (zone.x0 - 1, zone.x1 + 1, zone.z0, zone.z1)
        if not book.free(zone.id, t0, t0 + span, strip) or not book.gap_ok(zone.id, "stall", t0, t0 + span):
            continue
        motion = Motion([(t0, xa, z), (t0 + span, xb, z)], heading=0.0 if direction > 0 else math.pi)
        inside = motion.inside(zone.contains)
        if inside is None:
            continue
        book.taken.append((zone.id, t0, t0 + span, strip))
        cid = plan.add(cart, motion)
        lead = 1.0 if direction > 0 else -1.0  # the pusher walks behind the handle
        pusher = plan.add(Person.sample(rng), Motion([(t0, xa - lead * 1.6, z), (t0 + span, xb - lead * 1.6, z)]))
        plan.decoys.append(
            Decoy(
                "passing_cart",
                zone.id,
                _frame_time(inside[0], spec.fps),
                _frame_time(inside[1], spec.fps),
                [cid, pusher],
            )
        )
        return


def _traffic_kinds(rng: np.random.Generator, kind: str) -> list[str]:
    if kind == "road":
        trucks = ["dirty", "uncovered", "clean", "covered", str(rng.choice(["dirty", "uncovered"]))]
        cars = ["car"] * int(rng.integers(3, 5))
    elif kind == "street":
        trucks, cars = ["clean"], ["car"] * int(rng.integers(2, 4))
    else:
        events = [str(rng.choice(["dirty", "uncovered"])) for _ in range(int(rng.integers(2, 4)))]
        trucks, cars = events + ["clean", "covered"], ["car"] * int(rng.integers(2, 5))
    order = trucks + cars
    rng.shuffle(order)
    return order


def _add_traffic(rng: np.random.Generator, plan: Plan) -> None:
    """Vehicles one after another, each crossing the whole view in its lane; if the video is too short for
    all of them, cars go first, then decoy trucks, so that event trucks keep their place."""
    spec, cam, layout = plan.spec, plan.cam, plan.layout
    trips = []
    lanes = _usable_lanes(cam, layout)
    for kind in _traffic_kinds(rng, spec.kind):
        zc, direction = lanes[int(rng.integers(len(lanes)))]
        xs = [cam.ground_x_at(u, zc) for u in (0.0, float(cam.width))]
        if None in xs:
            continue
        sprite = Car.sample(rng) if kind == "car" else Truck.sample(rng, kind)
        lo, hi = min(xs), max(xs)
        half = sprite.half_extent[0]
        crossing = float(rng.uniform(4, 8) if kind == "car" else rng.uniform(7, 16))
        speed = (hi - lo + 2 * half) / crossing
        xa, xb = (lo - half - 1.0, hi + half + 1.0)[:: 1 if direction > 0 else -1]
        trips.append((kind, sprite, zc, direction, xa, xb, abs(xb - xa) / speed))
    gap = 3.0
    for drop in ("car", "clean", "covered", "dirty", "uncovered"):
        while sum(tr[6] + gap for tr in trips) > spec.duration_s - 4 and any(tr[0] == drop for tr in trips):
            trips.remove(next(tr for tr in trips if tr[0] == drop))
    slack = spec.duration_s - 4 - sum(tr[6] + gap for tr in trips)
    waits = rng.dirichlet(np.ones(len(trips) + 1)) * max(0.0, slack) if trips else []
    t = 2.0 + float(waits[0]) if trips else 0.0
    for (kind, sprite, zc, direction, xa, xb, span), wait in zip(trips, waits[1:], strict=True):
        aid = plan.add(sprite, Motion([(t, xa, zc), (t + span, xb, zc)], heading=0.0 if direction > 0 else math.pi))
        plan.passages.append(Passage(kind, aid, sprite.plate))
        t += span + gap + float(wait)


def _add_walkers(rng: np.random.Generator, plan: Plan) -> None:
    """Pedestrians along the far sidewalk, in front of the shop-front zones, so they pass before the items."""
    spec, cam, layout = plan.spec, plan.cam, plan.layout
    z_lo, z_hi = layout.far_walk[0] + 0.4, layout.far_wall - layout.line_depth - 0.3
    t = float(rng.uniform(0, 4))
    while t < spec.duration_s:
        z = float(rng.uniform(z_lo, max(z_lo, z_hi)))
        xs = [cam.ground_x_at(u, z) for u in (-40.0, cam.width + 40.0)]
        if None not in xs:
            lo, hi = min(xs), max(xs)
            speed = float(rng.uniform(0.9, 1.6))
            xa, xb = (lo, hi) if rng.random() < 0.5 else (hi, lo)
            plan.add(Person.sample(rng), Motion([(t, xa, z), (t + abs(hi - lo) / speed, xb, z)]))
        t += float(rng.uniform(3, 10))
