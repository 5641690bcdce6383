"""Object-local frames, boxes and flat faces in world space: the building blocks every sprite is made of.

A sprite stands at ground point (x, z) facing `heading` (radians from +X towards +Z); local coordinates are
(a: forward, y: up, b: to the side). A `Face` is a flat vertical rectangle addressed in metres from its
bottom-left corner as seen from outside, so decals, plates and mud land where they belong in any view.

>>> import numpy as np
>>> frame = Local(10.0, 5.0, 0.0)
>>> frame.world([[1.0, 2.0, 0.5]]).tolist()
[[11.0, 2.0, 5.5]]
"""

from __future__ import annotations

import math

import numpy as np

from training.synth.painter import Color, Painter

UP = np.array([0.0, 1.0, 0.0])


class Local:
    """The frame of one sprite: origin on the ground, `a` along the heading, `b` to its side."""

    def __init__(self, x: float, z: float, heading: float):
        self.origin = np.array([x, 0.0, z])
        self.ea = np.array([math.cos(heading), 0.0, math.sin(heading)])
        self.eb = np.array([-math.sin(heading), 0.0, math.cos(heading)])

    def world(self, pts) -> np.ndarray:
        """Local points (N, 3) as (a, y, b) -> world points (N, 3)."""
        p = np.asarray(pts, float).reshape(-1, 3)
        return self.origin + p[:, :1] * self.ea + p[:, 1:2] * UP + p[:, 2:3] * self.eb


class Face:
    """A vertical rectangle: `origin` its bottom-left corner seen from outside, `right` a unit vector."""

    def __init__(self, origin: np.ndarray, right: np.ndarray, width: float, height: float, normal: np.ndarray):
        self.origin, self.right, self.width, self.height, self.normal = origin, right, width, height, normal

    def at(self, s, t) -> np.ndarray:
        """Points `s` metres right and `t` metres up from the bottom-left corner."""
        s = np.atleast_1d(np.asarray(s, float))[:, None]
        t = np.atleast_1d(np.asarray(t, float))[:, None]
        return self.origin + s * self.right + t * UP

    def rect(self, p: Painter, s0: float, s1: float, t0: float, t1: float, color: Color) -> None:
        p.wpoly(self.at([s0, s1, s1, s0], [t0, t0, t1, t1]), color)

    def rects(self, p: Painter, boxes: np.ndarray, color: Color) -> None:
        """Many rectangles (N, 4) as s0, s1, t0, t1 in one pass."""
        b = np.asarray(boxes, float).reshape(-1, 4)
        s = b[:, [0, 1, 1, 0]]
        t = b[:, [2, 2, 3, 3]]
        pts = self.origin + s[..., None] * self.right + t[..., None] * UP
        p.wpolys(pts, color)

    def rel_rect(self, p: Painter, s0: float, s1: float, t0: float, t1: float, color: Color) -> None:
        """A rectangle given in fractions of the face's width and height."""
        w, h = self.width, self.height
        self.rect(p, s0 * w, s1 * w, t0 * h, t1 * h, color)

    def poly(self, p: Painter, s, t, color: Color) -> None:
        p.wpoly(self.at(s, t), color)

    def ellipse(self, p: Painter, s: float, t: float, rs: float, rt: float, color: Color, n: int = 14) -> None:
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
        self.poly(p, s + rs * np.cos(ang), t + rt * np.sin(ang), color)

    def patch(self, p: Painter, img: np.ndarray, s0: float, s1: float, t0: float, t1: float) -> None:
        p.wpatch(img, self.at([s0, s1, s1, s0], [t1, t1, t0, t0]))

    def faces_camera(self, cam_pos: np.ndarray) -> bool:
        center = self.origin + self.right * self.width / 2 + UP * self.height / 2
        return float(np.dot(self.normal, cam_pos - center)) > 0


def box_faces(frame: Local, a0: float, a1: float, y0: float, y1: float, b0: float, b1: float) -> dict[str, Face]:
    """The four vertical faces of a local box, keyed front (+a), back, left (+b), right (-b)."""
    ea, eb = frame.ea, frame.eb
    o = frame.origin
    h = y1 - y0

    def face(center_ab: tuple[float, float], normal: np.ndarray, width: float) -> Face:
        right = np.cross(normal, UP)
        c = o + center_ab[0] * ea + center_ab[1] * eb + UP * y0
        return Face(c - right * width / 2, right, width, h, normal)

    am, bm = (a0 + a1) / 2, (b0 + b1) / 2
    return {
        "front": face((a1, bm), ea, b1 - b0),
        "back": face((a0, bm), -ea, b1 - b0),
        "left": face((am, b1), eb, a1 - a0),
        "right": face((am, b0), -eb, a1 - a0),
    }


def top_corners(frame: Local, a0: float, a1: float, y: float, b0: float, b1: float) -> np.ndarray:
    return frame.world([[a0, y, b0], [a1, y, b0], [a1, y, b1], [a0, y, b1]])


def draw_box(
    p: Painter,
    frame: Local,
    a0: float,
    a1: float,
    y0: float,
    y1: float,
    b0: float,
    b1: float,
    color: Color,
    top: Color | None = None,
) -> dict[str, Face]:
    """Paint the visible faces of a box with light-dependent shading; returns the visible vertical faces."""
    cam = p.cam.position
    visible = {}
    for name, f in box_faces(frame, a0, a1, y0, y1, b0, b1).items():
        if f.faces_camera(cam):
            f.rect(p, 0, f.width, 0, f.height, p.shade(color, f.normal))
            visible[name] = f
    if cam[1] > y1:
        p.wpoly(top_corners(frame, a0, a1, y1, b0, b1), p.shade(top or color, UP))
    return visible
