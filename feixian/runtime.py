"""Composition root: builds the services from a `Config` and runs points through the pipeline.

`Runtime` owns the long-lived pieces (database, object store, detector, frame bus) and makes one
`PointWorker` per point. `replay` and `run` (CLI) are thin loops over it, and `feixian eval` uses the
same `replay` so the figures it reports describe the code that runs in production.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property

from cases.db import make_engine, session_factory, upgrade
from cases.service import CaseService
from cases.store import ObjectStore, make_store
from cases.users import UserService
from feixian.config import Config, Point
from ingest.sources import FileSource, RtspSource
from pipeline.bus import FrameBus, MemoryBus
from pipeline.detector import OnnxDetector
from pipeline.events import ViolationEvent
from pipeline.evidence import EvidenceBuilder, EvidenceBundle
from pipeline.plates import PlateReader, PlateRecognizer
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
        return CaseService(self.sessions)

    @cached_property
    def users(self) -> UserService:
        return UserService(self.sessions)

    @cached_property
    def store(self) -> ObjectStore:
        return make_store(self.config.settings.evidence, self.config.data_dir)

    @cached_property
    def detector(self) -> OnnxDetector:
        m = self.config.settings.model
        return OnnxDetector(self.config.model_path, m.track_threshold, m.iou_threshold, m.class_map, m.threads)

    @cached_property
    def plate_reader(self) -> PlateReader | None:
        path = self.config.plate_model_path
        if path is None:
            return None
        plates = self.config.settings.plates
        return PlateReader(PlateRecognizer(path, self.config.settings.model.threads), plates.min_confidence)

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

    def make_worker(self, point: Point) -> PointWorker:
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
        )

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
            )
        if src.kind == "rtsp":
            return RtspSource(point.id, self.config.source_path(point), point.detect_fps)
        return None  # push points get their frames from the HTTP API


@dataclass
class ReplayResult:
    stats: dict[str, WorkerStats] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def replay(runtime: Runtime, points: list[Point] | None = None) -> ReplayResult:
    """Run every file source as fast as possible through the full pipeline, then return."""
    points = [p for p in (points or runtime.config.points) if p.source.kind == "file"]
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
    return result


def start_live(
    runtime: Runtime,
    bus: FrameBus,
    stop: threading.Event,
    points: list[Point] | None = None,
    with_sources: bool = True,
) -> list[threading.Thread]:
    """Start one worker per point and, with `with_sources`, their pull sources paced like cameras;
    they run until `stop` is set. Push points are fed by the HTTP API through the same bus."""
    threads = []
    for point in points if points is not None else runtime.config.points:
        worker = runtime.make_worker(point)
        source = runtime.source_for(point, realtime=True) if with_sources else None
        if source is not None:
            threads.append(threading.Thread(target=_feed_live, args=(source, bus, stop), daemon=True))
        threads.append(threading.Thread(target=_work_live, args=(worker, bus, stop), daemon=True))
    for t in threads:
        t.start()
    return threads


def _feed_live(source: FileSource | RtspSource, bus: FrameBus, stop: threading.Event) -> None:
    def publish(frame) -> None:
        bus.publish(frame, block=True, timeout=None)

    threading.Thread(target=lambda: (stop.wait(), source.stop()), daemon=True).start()
    try:
        source.run(publish)
    except Exception as e:
        log.error("point %s: source stopped: %s", source.point_id, e)


def _work_live(worker: PointWorker, bus: FrameBus, stop: threading.Event) -> None:
    while not stop.is_set():
        frame = bus.consume(worker.point.id, timeout=0.5)
        if frame is not None:
            try:
                worker.process(frame)
            except Exception:  # keep the point alive; the frame is lost, the next one is processed
                log.exception("point %s: frame %s failed", worker.point.id, frame.seq)
    worker.flush()
