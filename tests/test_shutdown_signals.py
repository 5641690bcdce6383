"""Stopping: SIGINT and SIGTERM end `feixian run` / `serve` with exit 0 after sources stop, workers drain
their queues and file pending evidence (issue 28: Ctrl-C ended in `terminate called without an active
exception` and an abort, so every stop looked like a crash to a service manager)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import supervision as sv
import yaml
from worker_stand_ins import GatedDetector, push_point, quiet_worker

from feixian.config import load_config
from feixian.domain import Point
from feixian.runtime import LivePipeline
from pipeline.bus import MemoryBus
from pipeline.frames import Frame, encode_jpeg
from pipeline.worker import PointWorker

REPO = Path(__file__).resolve().parents[1]
TOKEN = "shutdown-test-token"
JPEG = encode_jpeg(np.zeros((36, 64, 3), np.uint8))
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClosingRule:
    """Stands in for a rule with an open episode: what `flush` is told is what gets filed at the end."""

    def __init__(self) -> None:
        self.flushed_at: datetime | None = None

    def update(self, frame: Frame, detections: sv.Detections) -> list:
        return []

    def flush(self, at: datetime) -> list:
        self.flushed_at = at
        return []


class EndlessSource:
    """A camera: frames 0.2 s apart until stopped."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.sent = 0

    def stop(self) -> None:
        self.stopped.set()

    def run(self, publish) -> None:
        while not self.stopped.wait(0.01):
            publish(Frame("P1", self.sent, T0 + timedelta(seconds=0.2 * self.sent), JPEG))
            self.sent += 1


class OnePointRuntime:
    def __init__(self) -> None:
        self.detector = GatedDetector(open_=False)
        self.rule = ClosingRule()
        self.source = EndlessSource()

    def make_worker(self, p: Point, live: bool = False) -> PointWorker:
        return quiet_worker(p, self.detector, [self.rule])

    def source_for(self, p: Point, realtime: bool) -> EndlessSource:
        return self.source


def test_stop_ends_the_source_then_drains_the_queue_and_flushes() -> None:
    rt = OnePointRuntime()
    live = LivePipeline(rt, MemoryBus(8), [push_point("P1")])
    live.start()
    # The worker is held on its first frame while the camera fills the queue.
    while live.status()["P1"].pending < 8:
        time.sleep(0.01)
    stuck: list[list[str]] = []
    stopper = threading.Thread(target=lambda: stuck.append(live.stop(timeout=60)))
    stopper.start()
    assert rt.source.stopped.wait(30)
    rt.detector.gate.set()
    stopper.join(60)
    assert stuck == [[]]
    stats = live.status()["P1"]
    # Every frame the camera sent was analysed, none lost in the queue; the open episode was closed at the last.
    assert (stats.stats.frames, stats.pending, stats.stats.skipped) == (rt.source.sent, 0, 0)
    assert rt.rule.flushed_at == T0 + timedelta(seconds=0.2 * (rt.source.sent - 1))
    assert not stats.alive


def _config(tmp_path: Path) -> Path:
    """One pull point playing a small generated video in a loop, one push point, the default model."""
    video = tmp_path / "loop.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    for i in range(50):
        frame = np.full((120, 160, 3), 90, np.uint8)
        cv2.rectangle(frame, (i * 2, 40), (i * 2 + 30, 80), (0, 0, 200), -1)
        writer.write(frame)
    writer.release()
    common = {
        "name": "n",
        "town": "t",
        "gps": [31.0, 121.0],
        "announced_on": "2024-01-01",
        "legal_review": True,
        "technical_review": True,
        "categories": ["occupation"],
        "zones": [{"id": "z", "kind": "no_occupation", "polygon": [[0, 60], [160, 60], [160, 120], [0, 120]]}],
    }
    points = [
        {"id": "F1", "device_id": "d1", "source": {"kind": "file", "uri": str(video), "loop": True}, **common},
        {"id": "P1", "device_id": "d2", "source": {"kind": "push"}, **common},
    ]
    (tmp_path / "points.yaml").write_text(yaml.safe_dump({"points": points}))
    settings = {
        "points_file": "points.yaml",
        "model": {"path": str(load_config(REPO / "configs" / "default.yaml").model_path), "threads": 1},
        "gateways": [{"id": "gw", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "points": ["P1"]}],
    }
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _wait_until_every_point_analysed(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    pushed = False
    while True:
        assert proc.poll() is None, "feixian exited before it was stopped"
        assert time.monotonic() < deadline, "points never analysed a frame"
        try:
            if not pushed:
                pushed = (
                    httpx.post(
                        f"{base}/api/v1/points/P1/frames",
                        content=JPEG,
                        headers={
                            "Authorization": f"Bearer {TOKEN}",
                            "Content-Type": "image/jpeg",
                            "X-Capture-Time": datetime.now(UTC).isoformat(),
                        },
                    ).status_code
                    == 202
                )
            points = httpx.get(f"{base}/readyz").json()["points"]
            if all(p["frames"] > 0 for p in points.values()):
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("command", "sig"), [("run", signal.SIGINT), ("run", signal.SIGTERM), ("serve", signal.SIGTERM)]
)
def test_a_stop_signal_exits_0_without_an_abort(tmp_path: Path, command: str, sig: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "feixian.cli", command, "--config", str(_config(tmp_path))]
        + ["--data-dir", str(tmp_path / "data"), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        # Stopped only once every point has analysed a frame: decoders and inference are under way.
        _wait_until_every_point_analysed(f"http://127.0.0.1:{port}", proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    assert "terminate called" not in stderr
    assert "stopped cleanly" in stderr
