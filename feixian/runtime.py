"""Composition root: builds the services from a `Config` and runs points through the pipeline.

`Runtime` owns the long-lived pieces (database, object store, detector, frame bus) and makes one
`PointWorker` per point. `replay` and `LivePipeline` (`feixian run` / `serve`) are thin loops over it, and
`feixian eval` uses the same `replay` so the figures it reports describe the code that runs in production.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

from cases.claims import ClaimService
from cases.db import make_engine, session_factory, upgrade
from cases.periodic import Periodic
from cases.retention import RetentionReport, run_retention
from cases.service import CaseService
from cases.spool import SpoolingStore, SpoolUploader
from cases.store import LocalObjectStore, ObjectStore, make_store
from cases.users import UserService
from feixian.config import Config
from feixian.domain import Category, Point
from ingest.sources import FileSource, RtspSource
from pipeline.bus import BusClosed, FrameBus, MemoryBus
from pipeline.crop_stages import StagedDetector
from pipeline.detector import OnnxDetector
from pipeline.detector_slots import SlotLimitedDetector, slots_for
from pipeline.events import ViolationEvent
from pipeline.evidence import EvidenceBuilder, EvidenceBundle
from pipeline.frames import FrameLimits
from pipeline.motion import MotionGate
from pipeline.plate_province import ProvinceCheck
from pipeline.plates import PlateReader, PlateRecognizer
from pipeline.redis_bus import RedisBus
from pipeline.rules import build_rules
from pipeline.tracking import PointTracker, TrackerSettings
from pipeline.worker import PointWorker, Rule, WorkerStats

log = logging.getLogger(__name__)


class Runtime:
    """Services for one config and data dir; cheap to build, heavy parts created on first use."""

    def __init__(self, config: Config):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def sessions(self):
        upgrade(self.config.database_url)
        return session_factory(make_engine(self.config.database_url))

    @cached_property
    def cases(self) -> CaseService:
        settings = self.config.settings
        return CaseService(
            self.sessions,
            procedure=settings.procedure.procedure(settings.sla),
            claims=ClaimService(self.sessions, settings.claims.minutes),
        )

    @cached_property
    def users(self) -> UserService:
        return UserService(self.sessions)

    @cached_property
    def store(self) -> ObjectStore:
        store = make_store(self.config.settings.evidence, self.config.data_dir)
        if isinstance(store, LocalObjectStore):
            return store  # already on the local disk a spool would use
        return SpoolingStore(store, LocalObjectStore(self.config.data_dir / "spool"))

    @cached_property
    def spool_uploader(self) -> SpoolUploader | None:
        store = self.store
        if not isinstance(store, SpoolingStore):
            return None
        spool = self.config.settings.spool
        return SpoolUploader(
            store, lambda: self.cases.settle_evidence(store.spooled), spool.retry_initial_s, spool.retry_max_s
        )

    def retention(self, dry_run: bool = False) -> RetentionReport:
        return run_retention(self.cases, self.store, self.config.settings.retention.raw_days, dry_run=dry_run)

    @property
    def _retention_interval_s(self) -> float:
        return self.config.settings.retention.interval_h * 3600

    def _retention_pass(self) -> float:
        self.retention()
        return self._retention_interval_s

    def background_jobs(self) -> list[Periodic]:
        """What `feixian run` / `serve` keep running beside the points: retention at start and then every
        `retention.interval_h`, and the upload of spooled evidence when the store is S3."""
        jobs = [Periodic("retention", self._retention_pass, retry_s=self._retention_interval_s)]
        spool = self.spool_job()
        return jobs + ([spool] if spool is not None else [])

    def spool_job(self) -> Periodic | None:
        """The upload of spooled evidence when the store is S3 (`feixian worker` runs it too: it files evidence)."""
        uploader = self.spool_uploader
        if uploader is None:
            return None
        # The last pass sends what the workers filed as they stopped; what stays spooled waits for a restart.
        return Periodic("spool-upload", uploader.step, uploader.initial_s, last=uploader.run_once)

    def frame_bus(self) -> FrameBus:
        """The bus ingest publishes to: in-process, or Redis Streams read by `feixian worker` processes."""
        bus = self.config.settings.bus
        if bus.backend == "redis":
            return RedisBus.connect(bus.redis, bus.max_pending)
        return MemoryBus(bus.max_pending)

    @cached_property
    def detector(self) -> SlotLimitedDetector:
        """The one detector every point's worker calls, no more calls at once than the cores can run."""
        model = self.config.settings.model
        return SlotLimitedDetector(self.detector_at(model.track_threshold), slots_for(model.threads))

    def detector_at(self, conf: float) -> OnnxDetector | StagedDetector:
        """The settings' detector keeping boxes from `conf`, with the second looks the settings name behind it."""
        m = self.config.settings.model
        detector = OnnxDetector(self.config.model_path, conf, m.iou_threshold, m.class_map, m.threads, device=m.device)
        return StagedDetector.of(detector, m.stages(self.config.base_dir))

    @cached_property
    def plate_reader(self) -> PlateReader | None:
        path = self.config.plate_model_path
        if path is None:
            return None
        plates = self.config.settings.plates
        threads = self.config.settings.model.threads
        check = ProvinceCheck.load(
            plates.province_model_path(self.config.base_dir),
            plates.province_agreed_confidence,
            plates.province_model_confidence,
            threads,
        )
        recognizer = PlateRecognizer(path, threads)
        return PlateReader(recognizer, plates.min_confidence, plates.province_confidence, province_check=check)

    @cached_property
    def evidence(self) -> EvidenceBuilder:
        d = self.detector
        m = self.config.settings.model
        return EvidenceBuilder(
            self.store,
            model_info={
                "name": d.metadata.get("feixian_model") or self.config.model_path.stem,
                "version": d.metadata.get("feixian_version") or d.metadata.get("version", ""),
                "sha256": d.sha256,
                "input_size": list(d.input_size),
                "class_map": m.class_map,
            },
            thresholds={"conf": m.conf_threshold, "track": m.track_threshold, "iou": m.iou_threshold},
        )

    def make_rules(self, point: Point) -> list[Rule]:
        views = self.config.settings.plates.views if self.plate_reader is not None else 0
        return build_rules(point, self.config.settings.rules, self.config.settings.model.conf_threshold, views)

    def frame_limits(self, live: bool) -> FrameLimits:
        """The pixel bound, and in live runs the clock bound (a replay runs on its video's own clock)."""
        server = self.config.settings.server
        ahead = timedelta(seconds=server.max_clock_ahead_s) if live else None
        return FrameLimits(max_pixels=server.max_frame_pixels, max_ahead=ahead)

    def make_worker(self, point: Point, live: bool = False) -> PointWorker:
        conf = self.config.settings.model.conf_threshold
        return PointWorker(
            point,
            self.detector,
            PointTracker(point.detect_fps, TrackerSettings(high_confidence=conf)),
            self.make_rules(point),
            self.evidence,
            self._open_case,
            self.config.settings.evidence,
            self.config.settings.published_categories,
            self.plate_reader,
            self.frame_limits(live),
            self.motion_gate(),
        )

    def motion_gate(self) -> MotionGate | None:
        """A point's own motion gate (it keeps that camera's background), or None where the settings turn it off."""
        motion = self.config.settings.motion
        return MotionGate(motion, self.detector.stride) if motion.enabled else None

    def _open_case(self, event: ViolationEvent, bundle: EvidenceBundle) -> None:
        point = self.config.point(event.point_id)
        case, created = self.cases.open_case(bundle.to_new_case(event, point))
        if created:
            log.info("case %s opened: %s/%s at %s", case.id, event.category.value, event.subtype, point.id)

    def source_for(self, point: Point, realtime: bool) -> FileSource | RtspSource | None:
        src = point.source
        if src.kind == "file":
            return FileSource(
                point.id,
                self.config.source_path(point),
                point.detect_fps,
                # A replay keeps the configured clock (reproducible event ids); a live run is "now".
                start_time=None if realtime else src.start_time,
                loop=src.loop and realtime,
                realtime=realtime,
                detect_path=self.config.detect_source_path(point),
            )
        if src.kind == "rtsp":
            return RtspSource(
                point.id,
                self.config.source_path(point),
                point.detect_fps,
                detect_url=self.config.detect_source_path(point),
            )
        return None  # push points get their frames from the HTTP API


def points_raising_no_cases(points: Sequence[Point], published: Collection[Category], on: date) -> dict[str, str]:
    """Each point that may raise no case on day `on`, with the reason: what `feixian run` warns of at start,
    so that a registry not filled in yet (configs/example-points.yaml) is told apart from a quiet street.

    >>> from feixian.domain import Source
    >>> p = Point(id="P1", name="n", town="t", device_id="d", gps=(31.0, 121.0), source=Source(kind="push"),
    ...           categories=[Category.OCCUPATION])
    >>> points_raising_no_cases([p], [Category.OCCUPATION], date(2026, 1, 1))
    {'P1': 'point not announced'}
    """
    reasons = {}
    for p in points:
        enabled = [c for c in p.categories if c in published]
        if not enabled:
            reasons[p.id] = "no published category enabled at this point"
            continue
        verdicts = [p.may_raise_cases(c, on) for c in enabled]
        if not any(ok for ok, _ in verdicts):
            reasons[p.id] = verdicts[0][1]
    return reasons


def warn_of_points_raising_no_cases(config: Config, points: Sequence[Point], on: date) -> None:
    """Log, once at start, each of `points` whose detections can only be advisory, and why."""
    registry = (config.base_dir / config.settings.points_file).resolve()
    for pid, reason in points_raising_no_cases(points, config.settings.published_categories, on).items():
        log.warning(
            "point %s raises no cases (%s): its detections are logged as advisory only. A point raises cases "
            "once its announcement date, legal and technical review are recorded in %s, it is in service and "
            "calibrated, and a published category is enabled there",
            pid,
            reason,
            registry,
        )


@dataclass
class ReplayResult:
    stats: dict[str, WorkerStats] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def replay(runtime: Runtime, points: list[Point] | None = None) -> ReplayResult:
    """Run every file source as fast as possible through the full pipeline, then return."""
    points = [p for p in (points or runtime.config.points) if p.source.kind == "file"]
    # The database is migrated before any worker runs, as serve's is: a replay killed while its points file their
    # first cases can then never leave a schema half made, which the next run could not migrate.
    _ = runtime.cases
    bus = MemoryBus(runtime.config.settings.bus.max_pending)
    result = ReplayResult()
    workers = {p.id: runtime.make_worker(p) for p in points}
    lock = threading.Lock()

    def feed(point: Point) -> None:
        source = runtime.source_for(point, realtime=False)
        try:
            source.run(lambda f: bus.publish(f, block=True))
        except Exception as e:  # one bad file must not stop the other points
            log.error("point %s: source failed: %s", point.id, e)
            with lock:
                result.errors[point.id] = str(e)
        finally:
            bus.close_point(point.id)

    def work(point: Point) -> None:
        workers[point.id].run(bus)

    threads = [threading.Thread(target=feed, args=(p,), name=f"src-{p.id}") for p in points]
    threads += [threading.Thread(target=work, args=(p,), name=f"wrk-{p.id}") for p in points]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for pid, w in workers.items():
        result.stats[pid] = w.stats
    if runtime.spool_uploader is not None:
        runtime.spool_uploader.run_once()  # what the store did not take stays spooled for `run` / `serve`
    return result


@dataclass
class PointStatus:
    """One point of a live run as /readyz reports it."""

    alive: bool
    idle_s: float  # since the worker's loop last came round (PointWorker.run: at least every 0.5 s when idle)
    pending: int
    stats: WorkerStats
    last_frame_at: datetime | None = None  # capture time of the last frame analysed (PointWorker.last_frame_at)
    source_down_s: float | None = None  # a pull stream's seconds without a frame (RtspSource.down_for); None: up
    source_reconnects: int = 0


class _LivePoint:
    def __init__(self, worker: PointWorker, source: FileSource | RtspSource | None):
        self.worker = worker
        self.source = source
        self.source_thread: threading.Thread | None = None
        self.worker_thread: threading.Thread | None = None


class LivePipeline:
    """What `feixian run` / `serve` keep running: each point's pull source (if any) and its worker, on threads
    of their own. `stop` ends it in order: sources stop, every point's queue is closed and drained, workers
    file their pending evidence, and every thread is joined, so no native decoder or inference call is still
    running when the interpreter exits (that ended in `terminate called without an active exception`). `jobs`
    (`Runtime.background_jobs`: retention, the spool upload) start with it and stop last."""

    def __init__(
        self,
        runtime: Runtime,
        bus: FrameBus,
        points: list[Point],
        with_sources: bool = True,
        jobs: Sequence[Periodic] = (),
    ):
        self.bus = bus
        self._jobs = list(jobs)
        self._points = {
            p.id: _LivePoint(
                runtime.make_worker(p, live=True), runtime.source_for(p, realtime=True) if with_sources else None
            )
            for p in points
        }

    def start(self) -> None:
        for pid, lp in self._points.items():
            if lp.source is not None:
                lp.source_thread = threading.Thread(target=self._feed, args=(lp,), name=f"src-{pid}", daemon=True)
                lp.source_thread.start()
            # Daemon threads, so a worker stuck in native code cannot keep the process up forever; `stop`
            # joins them, and gives up only after its timeout.
            lp.worker_thread = threading.Thread(target=self._work, args=(lp,), name=f"wrk-{pid}", daemon=True)
            lp.worker_thread.start()
        for job in self._jobs:
            job.start()

    def stop(self, timeout: float) -> list[str]:
        """Stop sources, drain and flush every point; returns the names of threads still running after
        `timeout` seconds (empty when all ended)."""
        deadline = time.monotonic() + timeout
        for lp in self._points.values():
            if lp.source is not None:
                lp.source.stop()
        stuck = self._join([lp.source_thread for lp in self._points.values()], deadline)
        for pid in self._points:
            self.bus.close_point(pid)
        stuck += self._join([lp.worker_thread for lp in self._points.values()], deadline)
        for job in self._jobs:
            job.stop(max(0.0, deadline - time.monotonic()))
        return stuck

    @property
    def workers(self) -> dict[str, PointWorker]:
        """Each point's worker, for the ops metrics' hooks (feixian.metrics)."""
        return {pid: lp.worker for pid, lp in self._points.items()}

    def status(self) -> dict[str, PointStatus]:
        now = time.monotonic()
        return {
            pid: PointStatus(
                alive=lp.worker_thread is not None and lp.worker_thread.is_alive(),
                idle_s=now - lp.worker.last_turn,
                pending=self.bus.pending(pid),
                stats=lp.worker.stats,
                last_frame_at=lp.worker.last_frame_at,
                source_down_s=lp.source.down_for(now) if isinstance(lp.source, RtspSource) else None,
                source_reconnects=lp.source.reconnects if isinstance(lp.source, RtspSource) else 0,
            )
            for pid, lp in self._points.items()
        }

    @staticmethod
    def _join(threads: list[threading.Thread | None], deadline: float) -> list[str]:
        for t in threads:
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t is not None and t.is_alive()]

    def _feed(self, lp: _LivePoint) -> None:
        assert lp.source is not None
        try:
            lp.source.run(lambda frame: self.bus.publish(frame, block=True, timeout=None))
        except BusClosed:
            pass  # the run is stopping
        except Exception as e:
            log.error("point %s: source stopped: %s", lp.source.point_id, e)

    def _work(self, lp: _LivePoint) -> None:
        try:
            lp.worker.run(self.bus)
        except Exception:
            log.exception("point %s: pending evidence could not be filed at the end of the run", lp.worker.point.id)
