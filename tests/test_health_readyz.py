"""`/readyz` tells the truth: a stalled or dead point worker, an unreachable database or a missing evidence
folder each make it 503 with the failing part named, and it is 200 again once the part recovers
(issue 28: `/healthz` answered ok while a worker was stalled)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from worker_stand_ins import GatedDetector, push_point, quiet_worker

from cases.store import LocalObjectStore
from feixian.domain import Point
from feixian.health import database_probe, make_health_router, store_probe
from feixian.runtime import LivePipeline
from ingest.frame_checks import RejectionCounts
from ingest.sources import RtspSource
from pipeline.bus import MemoryBus
from pipeline.frames import Frame, encode_jpeg
from pipeline.worker import PointWorker

JPEG = encode_jpeg(np.zeros((36, 64, 3), np.uint8))
NOW = datetime.now(UTC)


class FakeRuntime:
    """The two things `LivePipeline` asks of a runtime, with a detector the test can hold."""

    def __init__(self) -> None:
        self.detectors: dict[str, GatedDetector] = {}

    def make_worker(self, p: Point, live: bool = False) -> PointWorker:
        return quiet_worker(p, self.detectors.setdefault(p.id, GatedDetector()))

    def source_for(self, p: Point, realtime: bool) -> None:
        return None


def eventually(check: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll until `check` holds (a generous limit for a loaded 2-core machine; no timing is asserted)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


class DeadCamera:
    """A camera whose stream never opens (cv2.VideoCapture on an unreachable RTSP address)."""

    def isOpened(self) -> bool:
        return False

    def release(self) -> None:
        pass


class DeadStreamRuntime(FakeRuntime):
    """P2 pulls an RTSP stream that never answers; P1 takes pushed frames."""

    def source_for(self, p: Point, realtime: bool) -> RtspSource | None:
        if p.id != "P2":
            return None
        return RtspSource(p.id, "rtsp://camera/stream", 5, 0.05, 0.2, opener=lambda url: DeadCamera())


class World:
    def __init__(
        self, tmp_path: Path, stale_after_s: float = 3.0, runtime: FakeRuntime | None = None, sources: bool = False
    ) -> None:
        self.runtime = runtime or FakeRuntime()
        self.bus = MemoryBus(16)
        self.live = LivePipeline(self.runtime, self.bus, [push_point("P1"), push_point("P2")], with_sources=sources)
        self.store = LocalObjectStore(tmp_path / "evidence")
        self.db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        self.sessions = sessionmaker(create_engine(self.db_url))
        self.rejections = RejectionCounts()
        app = FastAPI()
        app.include_router(
            make_health_router(
                probes={"database": database_probe(lambda: self.sessions()), "storage": store_probe(self.store)},
                live=self.live,
                stale_after_s=stale_after_s,
                rejections=self.rejections,
            )
        )
        self.client = TestClient(app)
        self.live.start()

    def readyz(self) -> tuple[int, dict]:
        r = self.client.get("/readyz")
        return r.status_code, r.json()


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path)
    yield w
    for d in w.runtime.detectors.values():
        d.gate.set()
    w.live.stop(timeout=30)


def test_ready_when_every_part_answers(world: World) -> None:
    world.bus.publish(Frame("P1", 0, NOW, JPEG))
    world.rejections.add("P1", "future")
    eventually(lambda: world.live.status()["P1"].stats.frames == 1, "the frame is analysed")
    code, body = world.readyz()
    assert code == 200, body
    assert (body["ready"], body["failing"], body["database"], body["storage"]) == (True, [], "ok", "ok")
    assert body["points"]["P1"]["frames"] == 1
    assert body["points"]["P1"]["refused_at_push"] == {"future": 1}
    assert body["points"]["P2"]["ready"] is True


def test_a_stalled_worker_makes_it_503_naming_the_point(world: World) -> None:
    world.runtime.detectors["P1"].gate.clear()
    for i in range(3):
        world.bus.publish(Frame("P1", i, NOW + timedelta(seconds=i), JPEG))
    eventually(lambda: world.readyz()[0] == 503, "not ready while P1 is stuck")
    _, body = world.readyz()
    [failure] = body["failing"]
    assert failure.startswith("point P1: worker stalled")
    assert body["points"]["P1"]["pending"] == 2
    assert body["points"]["P2"]["ready"] is True
    # Let go: the worker catches up and the point is ready again.
    world.runtime.detectors["P1"].gate.set()
    eventually(lambda: world.readyz()[0] == 200, "ready again once P1 moves")
    assert world.live.status()["P1"].stats.frames == 3


def test_a_quiet_camera_is_not_a_stalled_worker(world: World) -> None:
    # No frames for longer than the staleness (3 s here): an idle loop still comes round, so it is ready.
    time.sleep(3.5)
    assert world.readyz()[0] == 200


def test_stopped_workers_are_not_ready(world: World) -> None:
    assert world.live.stop(timeout=30) == []
    code, body = world.readyz()
    assert code == 503
    assert body["failing"] == ["point P1: worker not running", "point P2: worker not running"]


def test_an_unreachable_database_is_named(world: World, tmp_path: Path) -> None:
    world.sessions = sessionmaker(create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}"))
    code, body = world.readyz()
    assert code == 503
    [failure] = body["failing"]
    assert failure.startswith("database: OperationalError")


def test_a_missing_evidence_folder_is_named(world: World) -> None:
    world.store.root.rmdir()
    code, body = world.readyz()
    assert code == 503
    assert body["failing"] == [f"storage: OSError: evidence folder {world.store.root} is missing or not writable"]
    assert body["database"] == "ok"


def test_a_dead_camera_stream_shows_its_point_down_and_leaves_the_others_running(tmp_path: Path) -> None:
    w = World(tmp_path, runtime=DeadStreamRuntime(), sources=True)
    try:
        eventually(lambda: w.readyz()[0] == 503, "P2's dead stream makes it not ready")
        _, body = w.readyz()
        [failure] = body["failing"]
        assert failure.startswith("point P2: camera stream down"), failure
        assert (
            body["points"]["P2"]["alive"] is True and body["points"]["P2"]["source_down_s"] >= 3.0
        )  # rounded to 0.1 s
        assert body["points"]["P1"]["ready"] is True and body["points"]["P1"]["source_down_s"] is None
        w.bus.publish(Frame("P1", 0, NOW, JPEG))
        eventually(lambda: w.live.status()["P1"].stats.frames == 1, "P1 is still analysed")
        assert w.live.status()["P2"].source_reconnects >= 2
    finally:
        assert w.live.stop(timeout=30) == []
