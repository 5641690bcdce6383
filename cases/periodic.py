"""A background job on a thread of its own: `step()` runs, returns how long to wait, and runs again until stopped.

>>> import threading
>>> done = threading.Event()
>>> job = Periodic("demo", lambda: done.set() or 3600.0)
>>> job.start(); done.wait(5)
True
>>> job.stop(timeout=5); job.alive
False
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `step` after `first_wait_s`, then again after each wait `step` returns; a step that raises is logged
    and run again after `retry_s`, so one failure never ends the job. `last`, if given, runs once when stopped."""

    def __init__(
        self,
        name: str,
        step: Callable[[], float],
        first_wait_s: float = 0.0,
        retry_s: float = 60.0,
        last: Callable[[], object] | None = None,
    ):
        self.name = name
        self.step = step
        self.first_wait_s = first_wait_s
        self.retry_s = retry_s
        self.last = last
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the job to end and wait up to `timeout` s for a step in progress (and `last`) to finish."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        wait = self.first_wait_s
        while not self._stop.wait(wait):
            try:
                wait = self.step()
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self.name, self.retry_s)
                wait = self.retry_s
        if self.last is not None:
            self.last()
