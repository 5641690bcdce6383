"""Where a scenario actor is at a given time: piecewise-linear ground paths with stops.

>>> m = Motion([(0.0, 0.0, 5.0), (10.0, 10.0, 5.0), (20.0, 10.0, 5.0)])
>>> m.at(5.0)[:2], m.at(15.0)[:2], m.at(25.0)
((5.0, 5.0), (10.0, 5.0), None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

STRIDE_M = 1.4  # one full gait cycle of a walker


@dataclass
class Motion:
    """Waypoints (t, x, z) in time order; present from the first to the last, absent otherwise."""

    waypoints: list[tuple[float, float, float]]
    heading: float | None = None  # fixed facing for stationary items; None = face the direction of travel
    _dist: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.waypoints) < 2:
            raise ValueError("a motion needs at least two waypoints")
        if any(b[0] < a[0] for a, b in pairwise(self.waypoints)):
            raise ValueError("waypoints must be in time order")
        d = [0.0]
        for a, b in pairwise(self.waypoints):
            d.append(d[-1] + math.hypot(b[1] - a[1], b[2] - a[2]))
        self._dist = d

    @classmethod
    def still(cls, t0: float, t1: float, x: float, z: float, heading: float) -> Motion:
        return cls([(t0, x, z), (t1, x, z)], heading=heading)

    @property
    def start(self) -> float:
        return self.waypoints[0][0]

    @property
    def end(self) -> float:
        return self.waypoints[-1][0]

    def at(self, t: float) -> tuple[float, float, float, float] | None:
        """(x, z, heading, gait phase) at time `t`, or None when the actor is not in the scene."""
        wp = self.waypoints
        if not wp[0][0] <= t < wp[-1][0]:
            return None
        times = [w[0] for w in wp]
        i = max(0, min(len(wp) - 2, int(np.searchsorted(times, t, side="right")) - 1))
        (t0, x0, z0), (t1, x1, z1) = wp[i], wp[i + 1]
        k = 0.0 if t1 <= t0 else (t - t0) / (t1 - t0)
        x, z = x0 + k * (x1 - x0), z0 + k * (z1 - z0)
        heading = self.heading
        if heading is None:
            j = i
            # A walker standing still keeps facing the way it last walked.
            while j > 0 and wp[j][1:] == wp[j + 1][1:]:
                j -= 1
            a, b = wp[j], wp[j + 1]
            heading = math.atan2(b[2] - a[2], b[1] - a[1]) if a[1:] != b[1:] else 0.0
        walked = self._dist[i] + k * (self._dist[i + 1] - self._dist[i])
        return x, z, heading, 2 * math.pi * walked / STRIDE_M

    def inside(self, contains, step: float = 0.2) -> tuple[float, float] | None:
        """First and last time (on a `step` grid) at which `contains(x, z)` holds, or None."""
        hits = [t for t in np.arange(self.start, self.end, step) if (p := self.at(float(t))) and contains(p[0], p[1])]
        return (float(hits[0]), float(hits[-1])) if hits else None
