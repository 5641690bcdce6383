"""`/metrics` of a `feixian worker` (scale-out): the points it holds right now, in the format and with the names of
`feixian serve`'s (`feixian.metrics`), on a port of its own (`--metrics-port`).

A worker's points come and go with its leases, so what it reports is read from its lease loop at each scrape: a
point handed over leaves this worker's metrics and appears in its successor's, with the successor's counts (the
restored worker's own stats: the counters carry on across a handover). Case figures are `serve`'s alone: every
worker reporting them would only repeat them.

>>> from prometheus_client.parser import text_string_to_metric_families
>>> monitor = worker_monitor(loop=None, bus=None)
>>> [f.name for f in text_string_to_metric_families(monitor.exposition().decode())]
['feixian_detector_seconds', 'feixian_case_target_seconds']
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import start_http_server

from cases.periodic import Periodic
from feixian.metrics import OpsMonitor
from feixian.runtime import PointStatus
from pipeline.lease_loop import LeasedPoints
from pipeline.redis_bus import RedisBus
from pipeline.worker import PointWorker


class HeldPoints:
    """The points `loop` holds, as `OpsMonitor` reads a live pipeline; a point still resuming is left out."""

    def __init__(self, loop: LeasedPoints | None, bus: RedisBus | None):
        self.loop = loop
        self.bus = bus

    @property
    def workers(self) -> Mapping[str, PointWorker]:
        if self.loop is None:
            return {}
        held = list(self.loop.held.items())
        return {pid: h.owner.worker for pid, h in held if h.owner.worker is not None}

    def status(self) -> dict[str, PointStatus]:
        out = {}
        for pid, held in list(self.loop.held.items()) if self.loop is not None else []:
            worker = held.owner.worker
            if worker is None:
                continue
            out[pid] = PointStatus(
                alive=held.thread.is_alive(),
                idle_s=time.monotonic() - worker.last_turn,
                pending=self.bus.pending(pid) if self.bus is not None else 0,
                stats=worker.stats,
                last_frame_at=worker.last_frame_at,
            )
        return out


def worker_monitor(loop: LeasedPoints | None, bus: RedisBus | None) -> OpsMonitor:
    """The monitor of a worker process: its held points, no push API, no case figures."""
    return OpsMonitor(HeldPoints(loop, bus), rejections=None, sessions=None)


def serve_metrics(monitor: OpsMonitor, host: str, port: int) -> Periodic:
    """Serve `monitor` at http://host:port/metrics on a daemon thread, and start its sampler (frames/s); returns
    the sampler, to stop at exit."""
    start_http_server(port, addr=host, registry=monitor.registry)
    sampler = Periodic("ops-sampler", monitor.sample)
    sampler.start()
    return sampler
