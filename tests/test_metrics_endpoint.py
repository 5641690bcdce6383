"""`/metrics` after a short run of a generated scenario (issue 26 item 3): it parses with prometheus-client's own
parser and carries every family ops needs, with figures that add up to what was fed in.

The scenario is `fault_scenario`'s still street (64x64, a constant ONNX detector seeing one chair in the zone): two
file points fed straight onto the bus as a replay does, and one push point fed over the HTTP push API.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from fault_scenario import START, write_scenario
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from cases.models import Case
from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import LivePipeline, Runtime
from ingest.sources import FileSource
from pipeline.bus import MemoryBus
from pipeline.frames import Frame

TOKEN = "ops-test-gateway-token"
FILE_POINTS = ("FLT-000", "FLT-001")
PUSHED = "FLT-002"
FAMILIES = {
    "feixian_frames_received",
    "feixian_frames_dropped",
    "feixian_frames_skipped",
    "feixian_frames_detected",
    "feixian_detections",
    "feixian_detector_seconds",
    "feixian_bus_pending_frames",
    "feixian_point_last_frame_timestamp_seconds",
    "feixian_point_up",
    "feixian_point_frames_per_second",
    "feixian_events",
    "feixian_cases",
    "feixian_cases_oldest_age_seconds",
    "feixian_cases_over_target",
    "feixian_case_target_seconds",
}


def ops_scenario(root: Path, video_s: float = 10.0) -> Path:
    """Three points of the still street; the last takes pushed frames from the gateway holding `TOKEN`."""
    gateway = {"id": "gw", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "points": [PUSHED]}
    settings = write_scenario(root, points=3, video_s=video_s, gateways=[gateway])
    points_file = root / "points.yaml"
    listed = yaml.safe_load(points_file.read_text(encoding="utf-8"))
    listed["points"][-1]["source"] = {"kind": "push"}
    points_file.write_text(yaml.safe_dump(listed, allow_unicode=True), encoding="utf-8")
    return settings


def eventually(check: Callable[[], bool], what: str, limit_s: float = 120) -> None:
    """Poll until `check` holds (a generous limit for a loaded 2-core machine; no timing is asserted)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


@dataclass
class OpsWorld:
    runtime: Runtime
    bus: MemoryBus
    live: LivePipeline
    client: TestClient
    fed: dict[str, int] = field(default_factory=dict)  # frames each point was given, refused ones included
    to_bus: dict[str, int] = field(default_factory=dict)  # of those, the frames that reached the bus

    def video(self) -> Path:
        return Path(self.runtime.config.source_path(self.runtime.config.point(FILE_POINTS[0])))

    def replay(self, point_id: str) -> None:
        """The point's video onto the bus as `feixian replay` feeds it, then one frame stamped before the last."""
        frames: list[Frame] = []
        self.runtime.source_for(self.runtime.config.point(point_id), realtime=False).run(frames.append)
        frames.append(Frame(point_id, len(frames), START - timedelta(seconds=1), frames[0].jpeg))
        for f in frames:
            self.bus.publish(f, block=True)
        self.fed[point_id] = self.to_bus[point_id] = len(frames)

    def push(self, point_id: str, start: datetime, realtime: bool = False) -> None:
        """The video through the push API as a camera gateway sends it, then one frame stamped an hour ahead."""
        frames: list[Frame] = []
        FileSource(point_id, self.video(), 5, start_time=start, realtime=realtime).run(frames.append)
        ahead = Frame(point_id, 0, datetime.now(UTC) + timedelta(hours=1), frames[0].jpeg)
        for f in [*frames, ahead]:
            r = self.client.post(
                f"/api/v1/points/{point_id}/frames",
                content=f.jpeg,
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "image/jpeg",
                    "X-Capture-Time": f.captured_at.isoformat(),
                },
            )
            assert r.status_code == (422 if f is ahead else 202), r.text
        self.fed[point_id], self.to_bus[point_id] = len(frames) + 1, len(frames)

    def settled(self) -> bool:
        """Every frame that reached the bus has been taken off it and judged."""
        for pid, st in self.live.status().items():
            s = st.stats
            if st.pending or s.frames + s.skipped + s.out_of_order + s.future + s.undecodable < self.to_bus.get(pid, 0):
                return False
        return True

    def scrape(self) -> dict[str, list]:
        """`/metrics` parsed by prometheus-client: family name -> samples."""
        r = self.client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
        return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


@contextmanager
def ops_world(root: Path, interval_s: float = 0.2) -> Iterator[OpsWorld]:
    """The scenario's app as `feixian serve` builds it, its lifespan (the ops sampler) running."""
    runtime = Runtime(load_config(ops_scenario(root / "scenario"), root / "data"))
    bus = MemoryBus(max_pending=10_000)  # the test feeds faster than cameras; nothing may be refused as busy
    live = LivePipeline(runtime, bus, runtime.config.points, with_sources=False)
    app = build_app(runtime, bus, live, metrics_interval_s=interval_s)
    live.start()
    try:
        with TestClient(app) as client:
            yield OpsWorld(runtime, bus, live, client)
    finally:
        live.stop(60)


def value(samples: list, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory) -> Iterator[tuple[OpsWorld, dict[str, list], dict[str, list]]]:
    """One run: scraped once every frame is judged (workers up), and again after the run stopped (cases filed)."""
    with ops_world(tmp_path_factory.mktemp("ops")) as world:
        for pid in FILE_POINTS:
            world.replay(pid)
        world.push(PUSHED, datetime.now(UTC) - timedelta(minutes=5))
        eventually(world.settled, "every frame is judged")
        # Two samples at least, so frames/s covers a window (the sampler runs every 0.2 s).
        eventually(lambda: "feixian_point_frames_per_second" in world.scrape(), "a frames/s window")
        while_up = world.scrape()
        world.live.stop(60)
        with world.runtime.sessions() as s:  # one case discovered four days ago: past the three-day target
            s.execute(
                update(Case)
                .where(Case.point_id == FILE_POINTS[0])
                .values(detected_at=datetime.now(UTC) - timedelta(days=4))
            )
            s.commit()
        yield world, while_up, world.scrape()


def test_metrics_parse_and_carry_every_family(scrapes) -> None:
    _, while_up, after = scrapes
    # Events and case ages come once a case is filed, which may wait for the end of the run.
    assert FAMILIES - {"feixian_events", "feixian_cases_oldest_age_seconds"} <= set(while_up)
    assert FAMILIES <= set(after)
    for name in FAMILIES:
        assert after[name], f"{name} has no samples"


def test_frames_add_up_per_point(scrapes) -> None:
    world, m, _ = scrapes
    for pid in (*FILE_POINTS, PUSHED):
        received = value(m["feixian_frames_received"], "feixian_frames_received_total", point=pid)
        detected = value(m["feixian_frames_detected"], "feixian_frames_detected_total", point=pid)
        skipped = sum(  # both reasons: the detect rate and the motion gate
            s.value for s in m["feixian_frames_skipped"] if s.name.endswith("_total") and s.labels["point"] == pid
        )
        dropped = sum(s.value for s in m["feixian_frames_dropped"] if s.labels["point"] == pid)
        assert received == world.fed[pid] == detected + skipped + dropped, pid
        assert detected > 0 and dropped == 1, pid
        calls = value(m["feixian_detector_seconds"], "feixian_detector_seconds_count", point=pid)
        assert calls == detected, "one latency observation a detector call"
        assert value(m["feixian_bus_pending_frames"], "feixian_bus_pending_frames", point=pid) == 0
        assert value(m["feixian_point_up"], "feixian_point_up", point=pid) == 1
        assert (
            value(
                m["feixian_point_last_frame_timestamp_seconds"], "feixian_point_last_frame_timestamp_seconds", point=pid
            )
            > 0
        )
        assert value(m["feixian_point_frames_per_second"], "feixian_point_frames_per_second", point=pid) >= 0
    dropped = m["feixian_frames_dropped"]
    for pid in FILE_POINTS:
        assert value(dropped, "feixian_frames_dropped_total", point=pid, stage="worker", reason="out_of_order") == 1
    assert value(dropped, "feixian_frames_dropped_total", point=PUSHED, stage="push", reason="future") == 1


def test_after_the_run_events_cases_and_the_three_day_target(scrapes) -> None:
    world, _, m = scrapes
    for pid in (*FILE_POINTS, PUSHED):
        assert value(m["feixian_point_up"], "feixian_point_up", point=pid) == 0, "the workers have stopped"
    events = {s.labels["point"]: s.value for s in m["feixian_events"]}
    cases = world.runtime.cases.all_cases()
    assert events and {s.labels["category"] for s in m["feixian_events"]} == {"occupation"}
    assert sum(events.values()) == len(cases) > 0
    assert value(m["feixian_cases"], "feixian_cases", state="detected") == len(cases)
    assert value(m["feixian_cases"], "feixian_cases", state="closed") == 0
    late = sum(c.point_id == FILE_POINTS[0] for c in cases)
    assert value(m["feixian_cases_over_target"], "feixian_cases_over_target", state="detected") == late > 0
    oldest = value(m["feixian_cases_oldest_age_seconds"], "feixian_cases_oldest_age_seconds", state="detected")
    assert oldest >= 4 * 24 * 3600
    assert value(m["feixian_case_target_seconds"], "feixian_case_target_seconds") == 72 * 3600
    assert not [s for s in m["feixian_cases_over_target"] if s.labels["state"] in ("voided", "executed", "closed")]
