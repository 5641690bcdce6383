"""Ops metrics of `feixian run` / `serve`: `/metrics` in the Prometheus text format, and the figures of the review
UI's ops page (`review_ui.ops`), both read from the running pipeline.

Nothing on the frame path counts for this module: a collector reads, at scrape time, the counters the workers
(`WorkerStats`) and the push API (`RejectionCounts`) keep anyway, the bus's queue depths and one grouped query on
the cases table. The one figure measured for it is the detector's latency, through `PointWorker.on_detector_seconds`.
A sampler on its own thread (started and stopped with the app) keeps the last minutes of each point's counters, for
frames/s and detector load.

Per point, `received = detected + skipped + dropped` (a frame whose processing raised is logged, not counted).
`feixian_frames_skipped_total` has two reasons: `detect_rate` (frames closer together than the point's detect fps)
and `motion_gate` (frames analysed on the last detections, since nothing moved: `pipeline.motion`).

>>> from prometheus_client.parser import text_string_to_metric_families
>>> monitor = OpsMonitor(live=None, rejections=None, sessions=None)
>>> sorted(f.name for f in text_string_to_metric_families(monitor.exposition().decode()))
['feixian_case_target_seconds', 'feixian_detector_seconds']
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from cases.lifecycle import State
from cases.models import Case
from cases.periodic import Periodic
from feixian.runtime import PointStatus
from ingest.frame_checks import RejectionCounts
from pipeline.worker import PointWorker
from review_ui.ops import OpsView, PointOps, StateAges

log = logging.getLogger(__name__)

# No `<histogram>_created` series: in the text format it is one more gauge a point, telling only when counting began
# (process-wide, but this app is the process's only exposition).
disable_created_metrics()

# The bureau's target: discovery -> review -> execution within three days (DESIGN.md §3).
TARGET_S = 72 * 3600.0
# Off the clock: the target is met (executed, closed) or no longer applies (voided).
OFF_CLOCK = frozenset({State.VOIDED, State.EXECUTED, State.CLOSED})
# The reasons PointWorker._drop counts, each a WorkerStats field.
WORKER_DROPS = ("out_of_order", "future", "undecodable")
# CPU inference of a small detector: a few ms at 64 px to about a second on an overloaded machine.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
SAMPLE_S = 5.0
KEEP_SAMPLES = 120  # ten minutes at SAMPLE_S
RATE_WINDOW_S = 60.0  # frames/s and load on the ops page and in the gauge: over about the last minute


class WatchedPoints(Protocol):
    """Points whose workers run in this process: a `LivePipeline`, or the share a scale-out worker holds."""

    @property
    def workers(self) -> Mapping[str, PointWorker]: ...

    def status(self) -> dict[str, PointStatus]: ...


@dataclass(frozen=True)
class _Sample:
    at: float  # time.monotonic()
    frames: dict[str, int]  # frames run through the detector, per point
    busy_s: dict[str, float]  # seconds in the detector, per point


def _rates(old: _Sample, new: _Sample, pid: str) -> tuple[float, float]:
    """Frames/s and detector load of `pid` between two samples (0 for a point the older one lacks)."""
    span = max(new.at - old.at, 1e-6)
    frames = new.frames.get(pid, 0) - old.frames.get(pid, 0)
    busy = new.busy_s.get(pid, 0.0) - old.busy_s.get(pid, 0.0)
    return frames / span, busy / span


def case_ages(sessions, now: datetime, target_s: float = TARGET_S) -> list[StateAges]:
    """Every state with its cases, their oldest age since discovery and how many are past the target, from one
    grouped query (scrapes come every few seconds, so never a query per state or per case)."""
    cutoff = now - timedelta(seconds=target_s)
    over = func.sum(case((Case.detected_at < cutoff, 1), else_=0))
    query = select(Case.state, func.count(Case.id), func.min(Case.detected_at), over).group_by(Case.state)
    with sessions() as s:
        rows = {state: (n, oldest, late) for state, n, oldest, late in s.execute(query)}
    ages = []
    for state in State:
        n, oldest, late = rows.get(state.value, (0, None, 0))
        running = state not in OFF_CLOCK
        age = now - oldest if running and oldest is not None else None
        ages.append(StateAges(state.value, n, running, age, int(late or 0) if running else 0))
    return ages


class OpsMonitor:
    """The live figures of one app: `/metrics` (`exposition`) and the ops page (`view`) read them alike.

    `live` is the pipeline whose points are watched (None: no points; anything with `workers` and `status()`, as a
    scale-out worker's `HeldPoints`), `sessions` the case database (None: no case figures), `stale_after_s` the
    /readyz judgement of a worker that stopped coming round."""

    def __init__(
        self,
        live: WatchedPoints | None,
        rejections: RejectionCounts | None,
        sessions,
        *,
        stale_after_s: float = 30.0,
        interval_s: float = SAMPLE_S,
        target_s: float = TARGET_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.live = live
        self.rejections = rejections if rejections is not None else RejectionCounts()
        self.sessions = sessions
        self.stale_after_s = stale_after_s
        self.interval_s = interval_s
        self.target_s = target_s
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self._latency = Histogram(
            "feixian_detector_seconds",
            "Seconds one detector call took, per point.",
            ["point"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._busy_s: dict[str, float] = {}
        for pid, worker in (live.workers if live is not None else {}).items():
            self.watch(pid, worker)
        self._samples: deque[_Sample] = deque(maxlen=KEEP_SAMPLES)
        self._lock = threading.Lock()
        self.registry.register(_PipelineCollector(self))

    def watch(self, pid: str, worker: PointWorker) -> PointWorker:
        """Time `worker`'s detector calls as point `pid`'s (a scale-out worker's points come and go); returns it."""
        self._busy_s.setdefault(pid, 0.0)
        worker.on_detector_seconds = self._observer(pid)
        return worker

    def _observer(self, pid: str) -> Callable[[float], None]:
        child = self._latency.labels(pid)

        def observe(seconds: float) -> None:
            child.observe(seconds)
            # Only this point's worker thread adds here; readers take a float, which the GIL keeps whole.
            self._busy_s[pid] += seconds

        return observe

    def status(self) -> dict[str, PointStatus]:
        return self.live.status() if self.live is not None else {}

    def is_up(self, status: PointStatus) -> bool:
        """The /readyz judgement: the worker runs and its loop comes round."""
        return status.alive and status.idle_s <= self.stale_after_s

    def dropped(self, pid: str, status: PointStatus) -> dict[tuple[str, str], int]:
        """Frames lost per (stage, reason): refused at the push API, or dropped by the worker."""
        out = {("push", reason): n for reason, n in self.rejections.for_point(pid).items()}
        out |= {("worker", r): getattr(status.stats, r) for r in WORKER_DROPS if getattr(status.stats, r)}
        return out

    def _now_sample(self, status: dict[str, PointStatus]) -> _Sample:
        return _Sample(time.monotonic(), {p: s.stats.frames for p, s in status.items()}, dict(self._busy_s))

    def sample(self) -> float:
        """Keep the counters as they are now; returns the wait before the next sample (a `Periodic` step)."""
        taken = self._now_sample(self.status())
        with self._lock:
            self._samples.append(taken)
        return self.interval_s

    def _history(self) -> list[_Sample]:
        with self._lock:
            return list(self._samples)

    def current_rates(self, status: dict[str, PointStatus]) -> dict[str, tuple[float, float]]:
        """Frames/s and detector load per point over about the last `RATE_WINDOW_S`; empty before any sample."""
        now = self._now_sample(status)
        # A sample taken a moment ago would turn one frame into a spike of hundreds a second.
        shortest = min(self.interval_s, 1.0)
        recent = [s for s in self._history() if shortest <= now.at - s.at <= RATE_WINDOW_S]
        if not recent:
            return {}
        return {pid: _rates(recent[0], now, pid) for pid in status}

    def case_ages(self) -> list[StateAges] | None:
        """None when there is no database or it does not answer (/readyz names that; the scrape goes on)."""
        if self.sessions is None:
            return None
        try:
            return case_ages(self.sessions, self.clock(), self.target_s)
        except SQLAlchemyError as e:
            log.warning("ops metrics: case figures unavailable: %s", e)
            return None

    def view(self) -> OpsView:
        """What the ops page shows."""
        status = self.status()
        rates = self.current_rates(status)
        history = self._history()
        points = []
        for pid, st in status.items():
            steps = [_rates(a, b, pid) for a, b in zip(history, history[1:], strict=False)]
            fps, load = rates.get(pid, (None, None))
            dropped: dict[str, int] = {}
            for (_, reason), n in self.dropped(pid, st).items():
                dropped[reason] = dropped.get(reason, 0) + n
            points.append(
                PointOps(
                    pid,
                    self.is_up(st),
                    st.last_frame_at,
                    fps,
                    load,
                    st.pending,
                    dropped,
                    [f for f, _ in steps],
                    [c for _, c in steps],
                )
            )
        return OpsView(points, self.case_ages() or [], self.target_s, self.interval_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Samples from the app's start to its end (FastAPI merges a router's lifespan into the app's)."""
        job = Periodic("ops-sampler", self.sample)
        job.start()
        try:
            yield
        finally:
            job.stop(timeout=5.0)


class _PipelineCollector(Collector):
    """Everything but the latency histogram, read when Prometheus (or a person) asks."""

    def __init__(self, monitor: OpsMonitor):
        self.m = monitor

    def collect(self) -> Iterator[Metric]:
        yield from self._points()
        yield from self._cases()

    def _points(self) -> Iterator[Metric]:
        m = self.m
        status = m.status()
        rates = m.current_rates(status)
        point = ["point"]
        received = CounterMetricFamily(
            "feixian_frames_received",
            "Frames that reached the point: pushed or pulled, refused included.",
            labels=point,
        )
        dropped = CounterMetricFamily(
            "feixian_frames_dropped",
            "Frames lost: refused at the push API (stage push) or dropped by the worker (stage worker), by reason.",
            labels=["point", "stage", "reason"],
        )
        skipped = CounterMetricFamily(
            "feixian_frames_skipped", "Frames not analysed on purpose, by reason.", labels=["point", "reason"]
        )
        detected = CounterMetricFamily("feixian_frames_detected", "Frames run through the detector.", labels=point)
        objects = CounterMetricFamily("feixian_detections", "Objects the detector and tracker kept.", labels=point)
        events = CounterMetricFamily(
            "feixian_events", "Violation events filed, case or advisory, by category.", labels=["point", "category"]
        )
        pending = GaugeMetricFamily(
            "feixian_bus_pending_frames", "Frames queued on the bus for the point.", labels=point
        )
        last = GaugeMetricFamily(
            "feixian_point_last_frame_timestamp_seconds",
            "Capture time (Unix s) of the last frame analysed; time() minus it is how far analysis trails.",
            labels=point,
        )
        up = GaugeMetricFamily("feixian_point_up", "1 while the point's worker runs and comes round.", labels=point)
        fps = GaugeMetricFamily(
            "feixian_point_frames_per_second", "Frames analysed a second, over about the last minute.", labels=point
        )
        for pid, st in status.items():
            s = st.stats
            lost = m.dropped(pid, st)
            received.add_metric([pid], s.frames + s.skipped + sum(lost.values()))  # gated frames are in frames
            for (stage, reason), n in sorted(lost.items()):
                dropped.add_metric([pid, stage, reason], n)
            skipped.add_metric([pid, "detect_rate"], s.skipped)
            skipped.add_metric([pid, "motion_gate"], s.gated)
            detected.add_metric([pid], s.frames - s.gated)
            objects.add_metric([pid], s.detections)
            for category, n in sorted(s.by_category.items()):
                events.add_metric([pid, category], n)
            pending.add_metric([pid], st.pending)
            if st.last_frame_at is not None:
                last.add_metric([pid], st.last_frame_at.timestamp())
            up.add_metric([pid], 1.0 if m.is_up(st) else 0.0)
            if pid in rates:
                fps.add_metric([pid], rates[pid][0])
        families = (received, dropped, skipped, detected, objects, events, pending, last, up, fps)
        yield from (f for f in families if f.samples)  # a family nothing has counted yet is left out

    def _cases(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "feixian_case_target_seconds", "The bureau's target from discovery to execution.", value=self.m.target_s
        )
        ages = self.m.case_ages()
        if ages is None:
            return
        count = GaugeMetricFamily("feixian_cases", "Cases in each state.", labels=["state"])
        oldest = GaugeMetricFamily(
            "feixian_cases_oldest_age_seconds",
            "Age since discovery of the oldest case in each state the target still runs for.",
            labels=["state"],
        )
        late = GaugeMetricFamily(
            "feixian_cases_over_target", "Cases past the target in each state it still runs for.", labels=["state"]
        )
        for a in ages:
            count.add_metric([a.state], a.count)
            if a.running:
                late.add_metric([a.state], a.over_target)
                if a.oldest_age is not None:
                    oldest.add_metric([a.state], a.oldest_age.total_seconds())
        yield from (f for f in (count, oldest, late) if f.samples)


def make_metrics_router(monitor: OpsMonitor) -> APIRouter:
    """`GET /metrics`; unauthenticated, as Prometheus scrapes it: counts and point ids, no case content."""
    router = APIRouter(lifespan=monitor.lifespan)

    # A plain function: FastAPI runs it on a worker thread, so the database query does not hold up the event loop.
    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(monitor.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
