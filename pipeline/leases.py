"""Which worker owns which point: leases in Redis, and the live workers that share the points.

A point's lease is a key holding its owner's name with a time to live (SET NX PX): the owner renews it every
quarter of `lease_ms` and is the one process that holds the point's tracker and ring buffer. A worker that
dies stops renewing; its leases run out and the other workers take its points. Each worker also keeps a
heartbeat in a sorted set (scored by when it runs out, on Redis's own clock), so every worker knows how many
share the points and takes its fair part, `share`.

>>> Leases.share(points=5, workers=2)
3
>>> Leases.share(points=4, workers=0)
4
"""

from __future__ import annotations

import math

import redis

from pipeline.redis_bus import StreamKeys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Redis's clock, so workers whose clocks differ still agree on who is alive.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class Leases:
    """The leases of worker `owner`, each lasting `lease_ms` unrenewed."""

    def __init__(self, client: redis.Redis, keys: StreamKeys, owner: str, lease_ms: int):
        self.client = client
        self.keys = keys
        self.owner = owner
        self.lease_ms = lease_ms
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._heartbeat = client.register_script(_HEARTBEAT)

    @property
    def renew_every_s(self) -> float:
        return self.lease_ms / 4000

    def acquire(self, point_id: str) -> bool:
        """Take the point if no one holds it."""
        return bool(self.client.set(self.keys.lease(point_id), self.owner, nx=True, px=self.lease_ms))

    def renew(self, point_id: str) -> bool:
        """Extend this worker's lease; False when it ran out (another worker may hold the point now)."""
        return bool(self._renew(keys=[self.keys.lease(point_id)], args=[self.owner, self.lease_ms]))

    def release(self, point_id: str) -> None:
        """Give the point up at once (a handover), if this worker still holds it."""
        self._release(keys=[self.keys.lease(point_id)], args=[self.owner])

    def holder(self, point_id: str) -> str | None:
        held = self.client.get(self.keys.lease(point_id))
        return held.decode() if held is not None else None

    def heartbeat(self) -> int:
        """Say this worker is alive for another `lease_ms`; returns how many workers are alive."""
        return int(self._heartbeat(keys=[self.keys.workers()], args=[self.owner, self.lease_ms]))

    def leave(self) -> None:
        self.client.zrem(self.keys.workers(), self.owner)

    @staticmethod
    def share(points: int, workers: int) -> int:
        """Points each worker should hold: all of them split evenly, rounded up so none is left over."""
        return math.ceil(points / max(1, workers))
