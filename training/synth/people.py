"""Pedestrians: upright billboards with head, hair, torso, swinging arms and legs.

A person is drawn in image space from where their feet and the top of their head project, so they stay
upright and correctly sized at any distance; `phase` animates the stride.

>>> import numpy as np
>>> Person.sample(np.random.default_rng(1)).height_m > 1.4
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from training.synth.painter import Color, Painter

_SKIN: tuple[Color, ...] = ((150, 180, 225), (120, 160, 210), (100, 140, 190), (170, 195, 235))
_HAIR: tuple[Color, ...] = ((20, 20, 25), (30, 35, 45), (40, 50, 70), (150, 150, 150))
_CLOTHES: tuple[Color, ...] = (
    (30, 30, 30),
    (220, 220, 220),
    (160, 90, 30),
    (40, 40, 170),
    (60, 130, 60),
    (110, 110, 110),
    (40, 150, 220),
    (140, 60, 120),
    (90, 60, 40),
    (200, 170, 120),
    (80, 40, 30),
    (180, 130, 200),
)


@dataclass(frozen=True)
class Person:
    """One pedestrian's look: size, skin, hair, clothes, build and whether a bag is carried."""

    height_m: float
    skin: Color
    hair: Color
    top: Color
    bottom: Color
    shoes: Color
    build: float  # shoulder width in body heights
    coat: bool  # long coat or dress hides the thighs
    bag: Color | None
    label: str = "person"

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Person:
        pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
        return cls(
            height_m=float(rng.uniform(1.5, 1.88)),
            skin=pick(_SKIN),
            hair=pick(_HAIR),
            top=pick(_CLOTHES),
            bottom=pick(_CLOTHES),
            shoes=pick(((20, 20, 20), (230, 230, 230), (60, 60, 80))),
            build=float(rng.uniform(0.2, 0.27)),
            coat=bool(rng.random() < 0.25),
            bag=pick(_CLOTHES) if rng.random() < 0.35 else None,
        )

    @property
    def half_extent(self) -> tuple[float, float]:
        return 0.3, 0.3

    def draw(self, p: Painter, x: float, z: float, heading: float, phase: float) -> None:
        """`heading` picks the view (side-on when walking across the image); `phase` the stride."""
        (foot, head), depth = p.cam.project(np.array([[x, 0.0, z], [x, self.height_m, z]]))
        if depth.min() <= 0.5:
            return
        h = foot[1] - head[1]
        cx, fy = foot[0], foot[1]
        # Screen direction of travel: side-on walkers show their stride, those facing the camera do not.
        side = abs(math.cos(heading - math.radians(p.cam.yaw_deg))) > 0.5
        swing = 0.13 * math.sin(phase) if side else 0.03 * math.sin(phase)
        sw = self.build * (0.7 if side else 1.0)

        def quad(x0: float, y0: float, x1: float, y1: float, dx0: float = 0.0, dx1: float = 0.0) -> np.ndarray:
            # (x, y) in body heights: x from the centre line, y up from the feet; dx shears top/bottom.
            return np.array(
                [
                    [cx + (x0 + dx0) * h, fy - y1 * h],
                    [cx + (x1 + dx0) * h, fy - y1 * h],
                    [cx + (x1 + dx1) * h, fy - y0 * h],
                    [cx + (x0 + dx1) * h, fy - y0 * h],
                ]
            )

        leg = 0.075
        for sgn in (1, -1):
            p.poly(quad(-leg / 2 + sgn * 0.035, 0.02, leg / 2 + sgn * 0.035, 0.5, 0, sgn * swing), self.bottom)
            p.poly(quad(-0.05 + sgn * 0.035, 0.0, 0.05 + sgn * 0.035, 0.035, sgn * swing, sgn * swing), self.shoes)
        low = 0.3 if self.coat else 0.48
        p.poly(quad(-sw / 2, low, sw / 2, 0.81, 0, 0), self.top)
        for sgn in (1, -1):
            arm = quad(-0.03, 0.5, 0.03, 0.8, 0, -sgn * swing * 0.8)
            arm[:, 0] += sgn * (sw / 2 - 0.02) * h
            p.poly(arm, self.top)
        if self.bag is not None:
            p.poly(quad(sw / 2 - 0.01, 0.42, sw / 2 + 0.08, 0.55, 0, 0), self.bag)
        p.ellipse(np.array([cx, fy - 0.82 * h]), (0.03 * h, 0.03 * h), self.skin)
        p.ellipse(np.array([cx, fy - 0.905 * h]), (0.058 * h, 0.07 * h), self.skin)
        p.ellipse(np.array([cx, fy - 0.935 * h]), (0.062 * h, 0.048 * h), self.hair)
