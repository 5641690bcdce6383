"""One leased point in a scale-out worker: resume its state, process its frames, checkpoint, hand over.

On taking a point, the owner loads the point's last checkpoint (pipeline.worker_state) and claims the stream
entries read but not acknowledged: the frames the checkpoint keeps (its ring buffer, the key frames of
pending events) and those read after it, which it processes again. Delivery is therefore at-least-once: an
event may be filed twice, and evidence and case creation are idempotent on the event id, so it makes one
case. Every `checkpoint_s` it saves the state and acknowledges the entries the state no longer keeps, fenced
by the lease (pipeline.redis_bus). It ends when asked (a handover: checkpoint, then end), when its lease is
lost (end without writing anything), or when the point is closed and drained (file everything, then end).

>>> owner = PointOwner("JDZ-001", bus, lambda: runtime.make_worker(point, live=True), 2.0)  # doctest: +SKIP
>>> threading.Thread(target=owner.run).start()  # doctest: +SKIP
>>> owner.handover.set()  # checkpoint and end; the thread ends, the lease may go  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pipeline import worker_state
from pipeline.frames import Frame
from pipeline.redis_bus import LeaseLost, RedisBus, entry_order
from pipeline.worker import PointWorker

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.5


class PointOwner:
    """Runs one point for as long as this worker holds its lease (`run`, on a thread of its own)."""

    def __init__(
        self,
        point_id: str,
        bus: RedisBus,
        make_worker: Callable[[], PointWorker],
        checkpoint_s: float,
        settings_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ):
        """`make_worker` builds a fresh PointWorker for the point: its services serve the restored state too.
        `settings_id` fingerprints the settings it works under: a checkpoint saved under others is not resumed."""
        self.point_id = point_id
        self.bus = bus
        self.make_worker = make_worker
        self.checkpoint_s = checkpoint_s
        self.settings_id = settings_id
        self.clock = clock
        self.handover = threading.Event()
        self.lost = threading.Event()
        self.resumed_frames = 0  # entries processed again on taking the point (read, never acknowledged)
        self.worker: PointWorker | None = None  # once resumed: the point's worker (ops metrics read its stats)
        self._held: dict[str, Frame] = {}  # entries read and not acknowledged, in stream order
        self._last = "0-0"

    @property
    def processed_through(self) -> str:
        """Entry id of the last frame processed ("0-0": none yet)."""
        return self._last

    def run(self) -> None:
        try:
            self.worker = self._resume()
            self._work(self.worker)
        except LeaseLost as e:
            self.lost.set()
            log.warning("point %s: %s; left to its new owner", self.point_id, e)
        except Exception:  # Redis gone, say: the lease is released and the point resumed from its checkpoint
            log.exception("point %s: owner stopped", self.point_id)

    def _resume(self) -> PointWorker:
        fresh = self.make_worker()
        saved = self.bus.checkpoint(self.point_id)
        self._held = dict(self.bus.claim(self.point_id))
        worker = fresh
        if saved is not None and saved.state:
            try:
                worker = worker_state.load(saved.state, worker_state.services_of(fresh), self._held, self.settings_id)
                self._last = saved.last_id
            # Either way a fresh worker judges every frame still held, from the oldest: an episode that began
            # before it starts again, as a new event; one within it is filed as before.
            except worker_state.SettingsChanged as e:
                log.warning("point %s: %s; starting afresh from the unacknowledged frames", self.point_id, e)
            except Exception:
                log.exception("point %s: checkpoint unreadable; starting from the unacknowledged frames", self.point_id)
        again = [(eid, f) for eid, f in self._held.items() if entry_order(eid) > entry_order(self._last)]
        for eid, frame in again:
            self._process(worker, eid, frame)
        self.resumed_frames = len(again)
        log.info(
            "point %s taken: state as of %s, %d frames kept, %d read again",
            self.point_id,
            self._last,
            len(self._held) - len(again),
            len(again),
        )
        return worker

    def _work(self, worker: PointWorker) -> None:
        saved_at = self.clock()
        while not self.lost.is_set():
            worker.last_turn = time.monotonic()  # as PointWorker.run: ops see a point whose loop stopped coming round
            if self.handover.is_set():
                self._commit(worker)
                return
            got = self.bus.read(self.point_id, timeout=READ_TIMEOUT_S)
            if got is not None:
                self._held[got[0]] = got[1]
                self._process(worker, *got)
            elif self.bus.is_drained(self.point_id):
                worker.flush()
                self._commit(worker, finished=True)
                log.info("point %s closed and drained: everything filed", self.point_id)
                return
            if self.clock() - saved_at >= self.checkpoint_s:
                self._commit(worker)
                saved_at = self.clock()

    def _process(self, worker: PointWorker, entry_id: str, frame: Frame) -> None:
        try:
            worker.process(frame)
        except Exception:  # as PointWorker.run: the frame is lost, the point goes on with the next one
            log.exception("point %s: frame %s failed", self.point_id, frame.seq)
        self._last = entry_id

    def _commit(self, worker: PointWorker, finished: bool = False) -> None:
        if finished:
            state, kept = b"", set()
        else:
            frames = {id(f): eid for eid, f in self._held.items()}
            state, kept = worker_state.dump(worker, worker_state.services_of(worker), frames, self.settings_id)
        done = [eid for eid in self._held if eid not in kept]
        self.bus.commit(self.point_id, self._last, state, done, finished)
        for eid in done:
            del self._held[eid]
