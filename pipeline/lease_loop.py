"""What a scale-out worker process does: hold a fair share of the points through leases, one `PointOwner` thread
per point held.

Every quarter of the lease it says it is alive, renews its leases (a point whose lease ran out is left at
once: its owner thread stops without writing), hands over points beyond its share when more workers have
joined (checkpoint first, then release, so the next owner resumes exactly there), and takes free points up to
its share. Its first round waits one renewal, so that workers started together see each other before
taking points. A dead worker's leases and heartbeat run out after `lease_ms`; the next round of every other
worker then counts one worker less and takes its points.

>>> loop = LeasedPoints(["P1", "P2"], leases, bus, owner_for)  # doctest: +SKIP
>>> stop = threading.Event()  # set by SIGTERM: every point is handed over before run() returns  # doctest: +SKIP
>>> loop.run(stop)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.leases import Leases
from pipeline.point_owner import PointOwner
from pipeline.redis_bus import RedisBus

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 30.0


@dataclass
class _Held:
    owner: PointOwner
    thread: threading.Thread


class LeasedPoints:
    """Keeps this worker's share of `point_ids`; `owner_for(point_id)` makes the owner of a point taken."""

    def __init__(
        self,
        point_ids: Sequence[str],
        leases: Leases,
        bus: RedisBus,
        owner_for: Callable[[str], PointOwner],
    ):
        self.point_ids = list(point_ids)
        self.leases = leases
        self.bus = bus
        self.owner_for = owner_for
        self.held: dict[str, _Held] = {}

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; then hands every point over and leaves."""
        self.leases.heartbeat()
        try:
            while not stop.wait(self.leases.renew_every_s):
                self.round()
        finally:
            self._hand_over(list(self.held))
            self.leases.leave()

    def round(self) -> None:
        self._keep()  # first: the leases are what runs out
        workers = self.leases.heartbeat()
        share = Leases.share(len(self.point_ids), workers)
        self._hand_over(list(self.held)[share:])
        self._take(share)

    def _keep(self) -> None:
        for pid, held in list(self.held.items()):
            if not held.thread.is_alive():
                # Closed and drained, or left after losing its lease: either way not ours to renew.
                if not held.owner.lost.is_set():
                    self.leases.release(pid)
                del self.held[pid]
            elif not self.leases.renew(pid):
                held.owner.lost.set()
                del self.held[pid]
                log.warning("point %s: lease ran out; leaving it to another worker", pid)

    def _take(self, share: int) -> None:
        free = [pid for pid in self.point_ids if pid not in self.held]
        random.shuffle(free)  # workers that take points in the same round rarely race for the same ones
        for pid in free:
            if len(self.held) >= share:
                return
            if self.bus.is_finished(pid) or not self.leases.acquire(pid):
                continue
            owner = self.owner_for(pid)
            thread = threading.Thread(target=owner.run, name=f"own-{pid}", daemon=True)
            self.held[pid] = _Held(owner, thread)
            thread.start()
            log.info("point %s taken by %s", pid, self.leases.owner)

    def _hand_over(self, point_ids: list[str]) -> None:
        for pid in point_ids:
            self.held[pid].owner.handover.set()
        for pid in point_ids:
            held = self.held.pop(pid)
            held.thread.join(HANDOVER_TIMEOUT_S)
            if held.thread.is_alive():
                # Its lease runs out on its own; its successor re-reads from the last checkpoint.
                log.error("point %s: owner did not stop within %.0f s", pid, HANDOVER_TIMEOUT_S)
                held.owner.lost.set()
            elif not held.owner.lost.is_set():
                self.leases.release(pid)
                log.info("point %s handed over by %s", pid, self.leases.owner)
