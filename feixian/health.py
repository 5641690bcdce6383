"""Readiness of `feixian run` / `serve`: `/readyz` (the review UI's `/healthz` only says the process answers).

Ready means every point's worker thread is alive and its loop comes round (a worker held by one frame for
longer than `server.ready_stale_s` is stalled: its camera is no longer analysed), the database answers and
the evidence store is reachable with room to spare (the evidence disk above its free-space floor, below which
the push API refuses frames with 507). Otherwise the answer is 503 and `failing` names each part and why. The
per-point figures (frames analysed, dropped by reason, refused at the push API) come along either way, so
a camera whose frames are all refused is visible here too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from cases.store import LocalObjectStore, ObjectStore
from feixian.runtime import LivePipeline, PointStatus
from ingest.disk_space import FreeSpaceGuard
from ingest.frame_checks import RejectionCounts

# Raises, with a message worth showing, when its part is unreachable.
Probe = Callable[[], None]


def database_probe(sessions) -> Probe:
    def probe() -> None:
        with sessions() as s:
            s.execute(text("SELECT 1"))

    return probe


def store_probe(store: ObjectStore, free_space: FreeSpaceGuard | None = None) -> Probe:
    def probe() -> None:
        shortage = free_space.shortage() if free_space is not None else None
        if shortage is not None:
            raise OSError(f"{shortage}: pushed frames are refused (507)")
        if isinstance(store, LocalObjectStore):
            # exists() on a missing or read-only folder just answers False; evidence could not be written.
            if not store.root.is_dir() or not os.access(store.root, os.W_OK | os.X_OK):
                raise OSError(f"evidence folder {store.root} is missing or not writable")
        else:
            store.exists("readyz-probe")

    return probe


def _point_report(status: PointStatus, stale_after_s: float, refused: dict[str, int]) -> tuple[dict, str | None]:
    problem = None
    if not status.alive:
        problem = "worker not running"
    elif status.idle_s > stale_after_s:
        problem = f"worker stalled: busy with one frame for {status.idle_s:.0f} s, {status.pending} frames queued"
    elif status.source_down_s is not None and status.source_down_s > stale_after_s:
        problem = (
            f"camera stream down: no frame for {status.source_down_s:.0f} s, "
            f"{status.source_reconnects} reconnects tried"
        )
    report = {
        "ready": problem is None,
        "alive": status.alive,
        "idle_s": round(status.idle_s, 1),
        "pending": status.pending,
        "source_down_s": None if status.source_down_s is None else round(status.source_down_s, 1),
        **{k: v for k, v in asdict(status.stats).items() if k != "by_category"},
        "refused_at_push": refused,
    }
    return report, problem


def make_health_router(
    *,
    probes: Mapping[str, Probe],
    live: LivePipeline | None,
    stale_after_s: float,
    rejections: RejectionCounts | None = None,
) -> APIRouter:
    """`GET /readyz`: 200 when ready, else 503; `probes` name the shared parts (database, storage)."""
    router = APIRouter()

    # A plain function: FastAPI runs it on a worker thread, so a slow probe does not hold up the event loop.
    @router.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        failing: list[str] = []
        body: dict = {}
        for name, probe in probes.items():
            try:
                probe()
                body[name] = "ok"
            except Exception as e:
                body[name] = f"{type(e).__name__}: {e}"
                failing.append(f"{name}: {body[name]}")
        points = {}
        for pid, status in (live.status() if live is not None else {}).items():
            refused = rejections.for_point(pid) if rejections is not None else {}
            points[pid], problem = _point_report(status, stale_after_s, refused)
            if problem is not None:
                failing.append(f"point {pid}: {problem}")
        body = {"ready": not failing, "failing": failing, **body, "points": points}
        return JSONResponse(body, status_code=200 if not failing else 503)

    return router
