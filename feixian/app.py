"""The web app of `feixian run` / `feixian serve`: the review UI with the push API, `/readyz` and `/docs`
mounted on it, and `serve`, which runs it beside the live pipeline and stops both in order on SIGINT or
SIGTERM."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import secrets
import signal
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from cases.parties import PartyService
from feixian.api_docs import make_docs_router
from feixian.config import ConfigError
from feixian.health import database_probe, make_health_router, store_probe
from feixian.metrics import SAMPLE_S, OpsMonitor, make_metrics_router
from feixian.runtime import LivePipeline, Runtime, warn_of_points_raising_no_cases
from ingest.disk_space import MB, FreeSpaceGuard
from ingest.frame_checks import RejectionCounts
from ingest.push_api import make_push_router
from pipeline.bus import BusClosed, BusFull, FrameBus, MemoryBus
from pipeline.frames import FrameLimits
from review_ui.app import ReviewServices, create_app

log = logging.getLogger(__name__)


def session_secret(runtime: Runtime) -> str:
    """The session-signing secret: from the environment variable the settings name, else one generated
    once and kept in the data dir, so sign-ins survive a restart."""
    env = os.environ.get(runtime.config.settings.server.secret_key_env)
    if env:
        return env
    path = Path(runtime.config.data_dir) / "session_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def build_app(
    runtime: Runtime, bus: FrameBus, live: LivePipeline | None = None, metrics_interval_s: float = SAMPLE_S
) -> FastAPI:
    """The app for `runtime`; `live` is the pipeline whose workers `/readyz`, `/metrics` and the ops page report,
    sampled every `metrics_interval_s` for the ops page's charts."""
    cfg = runtime.config
    server = cfg.settings.server
    rejections = RejectionCounts()
    monitor = OpsMonitor(
        live, rejections, runtime.sessions, stale_after_s=server.ready_stale_s, interval_s=metrics_interval_s
    )
    app = create_app(
        ReviewServices(
            cases=runtime.cases,
            users=runtime.users,
            store=runtime.store,
            secret_key=session_secret(runtime),
            points={p.id: p for p in cfg.points},
            ops=monitor.view,
            parties=PartyService(runtime.sessions, cfg.settings.parties),
            sla=cfg.settings.sla.clock(),
            publicity=cfg.settings.publicity,
        )
    )
    free_space = FreeSpaceGuard(cfg.evidence_dir, cfg.settings.evidence.min_free_mb * MB)
    pushed = [p for p in cfg.points if p.source.kind == "push"]
    app.include_router(
        make_push_router(
            gateways=cfg.settings.gateways,
            point_ids=[p.id for p in pushed],
            registered=[p.id for p in cfg.points],
            announced_on={p.id: p.announced_on for p in pushed},
            max_frame_bytes=server.max_frame_bytes,
            limits=FrameLimits(
                max_pixels=server.max_frame_pixels, max_ahead=timedelta(seconds=server.max_clock_ahead_s)
            ),
            publish=bus.publish,
            full_errors=(BusFull, BusClosed),
            rejections=rejections,
            free_space=free_space,
        )
    )
    app.include_router(
        make_health_router(
            probes={"database": database_probe(runtime.sessions), "storage": store_probe(runtime.store, free_space)},
            live=live,
            stale_after_s=server.ready_stale_s,
            rejections=rejections,
        )
    )
    app.include_router(make_metrics_router(monitor))
    app.include_router(make_docs_router(app))
    return app


class _Server(uvicorn.Server):
    """uvicorn, except that a stop signal only ends the server and returns to `serve`: uvicorn re-raises the
    signal once it has shut down, which kills the process before the pipeline is drained."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; whoever runs us there handles them
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # What is loaded by now (settings, models, templates, the app) lives as long as the process: frozen out of the
        # collector's sight, a full collection scans only what requests allocate. Unfrozen, each full collection
        # walked some 220,000 objects for about 100 ms, the slowest tenth of the queue page (p95 173 ms, then 72 ms).
        gc.freeze()
        await super().startup(sockets)


def serve(runtime: Runtime, *, with_sources: bool, host: str | None = None, port: int | None = None) -> int:
    """`feixian run` (pull sources too) / `feixian serve` (push points only) until SIGINT or SIGTERM; then
    sources stop, workers drain their queues and file pending evidence. 0 when everything ended in time."""
    cfg = runtime.config
    server = cfg.settings.server
    bus = runtime.frame_bus()
    if not isinstance(bus, MemoryBus):
        if with_sources:
            raise ConfigError("bus.backend redis: run `feixian serve` and `feixian worker`; `run` is embedded only")
        return _serve_publishing(runtime, bus, host, port)
    points = cfg.points if with_sources else [p for p in cfg.points if p.source.kind == "push"]
    warn_of_points_raising_no_cases(cfg, points, datetime.now(UTC).date())
    live = LivePipeline(runtime, bus, points, with_sources=with_sources, jobs=runtime.background_jobs())
    app = build_app(runtime, bus, live)
    live.start()
    try:
        _Server(uvicorn.Config(app, host=host or server.host, port=port or server.port, log_level="info")).run()
    finally:
        log.info("stopping: draining %d points (at most %.0f s)", len(points), server.shutdown_timeout_s)
        stuck = live.stop(server.shutdown_timeout_s)
    if stuck:
        log.error("stopped with threads still running after %.0f s: %s", server.shutdown_timeout_s, ", ".join(stuck))
        return 1
    log.info("stopped cleanly")
    return 0


def _serve_publishing(runtime: Runtime, bus: FrameBus, host: str | None, port: int | None) -> int:
    """`serve` over Redis Streams: the app and push API publish, `feixian worker` processes run the points."""
    server = runtime.config.settings.server
    jobs = runtime.background_jobs()
    for job in jobs:
        job.start()
    try:
        app = build_app(runtime, bus)
        _Server(uvicorn.Config(app, host=host or server.host, port=port or server.port, log_level="info")).run()
    finally:
        for job in jobs:
            job.stop(server.shutdown_timeout_s)
    log.info("stopped cleanly; queued frames stay in Redis for the workers")
    return 0
