"""A fixed pinhole street camera over a flat ground plane.

World axes: X runs along the street, Y is up, Z runs across the street (away from a camera that looks
straight across). Metres throughout. An object's pixel height is f * h / depth, so its size follows how far
below the horizon its foot lands, as on a real fixed camera.

>>> import numpy as np
>>> cam = Camera(640, 360, focal=500.0, height=6.0, yaw_deg=0.0, pitch_deg=10.0)
>>> uv, depth = cam.project(np.array([[0.0, 0.0, 20.0], [0.0, 1.7, 20.0]]))
>>> round(float(uv[0, 1] - uv[1, 1]))  # a 1.7 m person 20 m away
40
"""

from __future__ import annotations

import math

import numpy as np

NEAR_M = 0.5  # geometry closer than this to the lens plane is clipped away


class Camera:
    """Pinhole camera at (x, height, z), turned `yaw_deg` from the Z axis towards +X, tilted `pitch_deg` down."""

    def __init__(
        self,
        width: int,
        height_px: int,
        focal: float,
        height: float,
        yaw_deg: float,
        pitch_deg: float,
        x: float = 0.0,
        z: float = 0.0,
    ):
        self.width, self.height_px = width, height_px
        self.focal, self.cam_height, self.yaw_deg, self.pitch_deg = focal, height, yaw_deg, pitch_deg
        self.position = np.array([x, height, z])
        psi, phi = math.radians(yaw_deg), math.radians(pitch_deg)
        forward = [math.sin(psi) * math.cos(phi), -math.sin(phi), math.cos(psi) * math.cos(phi)]
        right = [math.cos(psi), 0.0, -math.sin(psi)]
        down = [-math.sin(psi) * math.sin(phi), -math.cos(phi), -math.cos(psi) * math.sin(phi)]
        self._rot = np.array([right, down, forward])
        self.cx, self.cy = width / 2.0, height_px / 2.0

    @property
    def horizon_y(self) -> float:
        return self.cy - self.focal * math.tan(math.radians(self.pitch_deg))

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, float) - self.position) @ self._rot.T

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) and depth along the optical axis (N,)."""
        c = self.to_camera(pts)
        z = np.maximum(c[:, 2], 1e-6)
        uv = np.stack([self.cx + self.focal * c[:, 0] / z, self.cy + self.focal * c[:, 1] / z], axis=1)
        return uv, c[:, 2]

    def project_polygon(self, pts: np.ndarray) -> np.ndarray | None:
        """A planar world polygon clipped to the space in front of the lens, in pixels; None if behind."""
        c = _clip_near(self.to_camera(pts))
        if len(c) < 3:
            return None
        return np.stack([self.cx + self.focal * c[:, 0] / c[:, 2], self.cy + self.focal * c[:, 1] / c[:, 2]], 1)

    def depth(self, x: float, z: float) -> float:
        return float(self.to_camera(np.array([[x, 0.0, z]]))[0, 2])

    def ground_x_at(self, u: float, z: float) -> float | None:
        """The street X whose ground point at cross-street position `z` lands in pixel column `u`."""
        d = self.position
        r, f = self._rot[0], self._rot[2]
        dz, dy = z - d[2], -d[1]
        du = u - self.cx
        denom = du * f[0] - self.focal * r[0]
        if abs(denom) < 1e-9:
            return None
        x = d[0] + (self.focal * (dz * r[2] + dy * r[1]) - du * (dz * f[2] + dy * f[1])) / denom
        return float(x) if self.depth(x, z) > NEAR_M else None

    def ground_at(self, u: float, v: float) -> tuple[float, float] | None:
        """The ground point (x, z) seen at pixel (u, v); None at or above the horizon."""
        ray = self._rot.T @ np.array([(u - self.cx) / self.focal, (v - self.cy) / self.focal, 1.0])
        if ray[1] >= -1e-9:
            return None
        t = -self.position[1] / ray[1]
        return float(self.position[0] + t * ray[0]), float(self.position[2] + t * ray[2])


def _clip_near(c: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman against the plane z = NEAR_M in camera coordinates."""
    if (c[:, 2] >= NEAR_M).all():
        return c
    out = []
    n = len(c)
    for i in range(n):
        a, b = c[i], c[(i + 1) % n]
        a_in, b_in = a[2] >= NEAR_M, b[2] >= NEAR_M
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (NEAR_M - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))
