"""Per-gateway push rate limits: a token bucket per gateway, refilled at its `max_fps`.

A gateway that pushes faster than configured (a firmware bug, a replay loop, a stolen token) is answered
429 with the seconds to wait, so it cannot crowd out the other gateways' cameras or fill the frame bus.
The bucket holds one second's worth of frames (at least one), so a gateway catching up after a short
network hiccup is not refused at once.

>>> t = [0.0]
>>> bucket = TokenBucket(rate=2.0, clock=lambda: t[0])
>>> [bucket.take() for _ in range(3)]
[0.0, 0.0, 0.5]
>>> t[0] = 0.5
>>> bucket.take()
0.0
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from feixian.domain import Gateway


class TokenBucket:
    """`rate` frames a second on average, bursts of up to `capacity` (default: one second's worth)."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token: 0.0 when one was there, else the seconds until one will be (nothing is taken)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate


class GatewayRateLimits:
    """One bucket per gateway that has a `max_fps`; gateways without one are not limited."""

    def __init__(self, gateways: Sequence[Gateway], clock: Callable[[], float] = time.monotonic):
        self._buckets = {gw.id: TokenBucket(gw.max_fps, clock=clock) for gw in gateways if gw.max_fps is not None}

    def retry_after(self, gateway_id: str) -> int | None:
        """None when the gateway may push now, else whole seconds to wait (at least 1, as Retry-After needs)."""
        bucket = self._buckets.get(gateway_id)
        if bucket is None:
            return None
        wait = bucket.take()
        return None if wait == 0.0 else max(1, math.ceil(wait))
