"""`feixian worker --config F`: a pipeline worker for scale-out. With `bus.backend: redis`, `feixian serve` publishes
the pushed frames to Redis Streams and each worker process holds a share of the push points through leases
(pipeline.lease_loop), running their trackers, rules, evidence and cases. SIGTERM or SIGINT hands every point
over (checkpoint, release) and exits 0; a worker killed outright loses its points to the others within
`bus.redis.lease_ms` and a renewal."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path

from feixian.config import Settings, load_config
from feixian.domain import Point
from feixian.runtime import Runtime
from feixian.worker_metrics import serve_metrics, worker_monitor
from pipeline.lease_loop import LeasedPoints
from pipeline.leases import Leases
from pipeline.point_owner import PointOwner
from pipeline.redis_bus import RedisBus
from pipeline.worker import PointWorker

log = logging.getLogger(__name__)


def worker_name() -> str:
    """Unique per process, and readable in Redis: host, pid and a random part (pids repeat across hosts)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def settings_fingerprint(settings: Settings, model_path: Path, point: Point) -> str:
    """What a point's worker state is made under: the point's record, the settings, and the model file (its path
    and modification time).

    >>> from feixian.domain import Source
    >>> p = Point(id="P1", name="n", town="t", device_id="d", gps=(31.0, 121.0), source=Source(kind="push"))
    >>> settings = Settings(model={"path": "m.onnx"})
    >>> a = settings_fingerprint(settings, Path("/none"), p)
    >>> a == settings_fingerprint(settings, Path("/none"), p.model_copy(update={"dwell_seconds": 9}))
    False
    """
    model = model_path.stat().st_mtime_ns if model_path.exists() else 0
    mark = f"{point.model_dump_json()}|{settings.model_dump_json()}|{model_path}|{model}"
    return hashlib.sha256(mark.encode()).hexdigest()[:16]


def cmd_worker(args: argparse.Namespace) -> int:
    runtime = Runtime(load_config(args.config, args.data_dir))
    settings = runtime.config.settings
    if settings.bus.backend != "redis":
        print(
            "feixian worker: needs bus.backend: redis in the settings (the embedded bus has no workers)",
            file=sys.stderr,
        )
        return 2
    name = worker_name()
    redis_settings = settings.bus.redis
    bus = RedisBus.connect(redis_settings, settings.bus.max_pending, consumer=name, fenced=True)
    leases = Leases(bus.client, bus.keys, name, redis_settings.lease_ms)
    points = {p.id: p for p in runtime.config.points if p.source.kind == "push"}

    def owner_for(point_id: str) -> PointOwner:
        point = points[point_id]

        def make_worker() -> PointWorker:
            worker = runtime.make_worker(point, live=True)
            return monitor.watch(point_id, worker) if monitor is not None else worker

        return PointOwner(
            point_id,
            bus,
            make_worker,
            redis_settings.checkpoint_s,
            settings_fingerprint(settings, runtime.config.model_path, point),
        )

    loop = LeasedPoints(list(points), leases, bus, owner_for)
    monitor = worker_monitor(loop, bus) if args.metrics_port is not None else None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    jobs = [job for job in (runtime.spool_job(),) if job is not None]
    for job in jobs:
        job.start()
    if monitor is not None:
        try:
            jobs.append(serve_metrics(monitor, args.metrics_host, args.metrics_port))
        except OSError as e:
            print(
                f"feixian worker: cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {e}", file=sys.stderr
            )
            for job in jobs:
                job.stop(settings.server.shutdown_timeout_s)
            return 2
        log.info("worker %s: metrics at http://%s:%d/metrics", name, args.metrics_host, args.metrics_port)
    log.info("worker %s: sharing %d push points over %s", name, len(points), redis_settings.url)
    try:
        loop.run(stop)
    finally:
        for job in jobs:
            job.stop(settings.server.shutdown_timeout_s)
    log.info("worker %s: every point handed over", name)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("worker", parents=[common], help="pipeline worker for scale-out (bus.backend: redis)")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve this worker's points' metrics (Prometheus format, as serve's /metrics) on this port; default: none",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics listen on (default 127.0.0.1; 0.0.0.0 in a container scraped from outside)",
    )
    p.set_defaults(func=cmd_worker)
