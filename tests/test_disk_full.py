"""A full evidence disk (issue 28, faults): the push API refuses new frames with 507 while the evidence
folder's filesystem is below its free-space floor, leaves what is stored untouched, `/readyz` names the
disk, and frames flow again once space is freed. The free-space probe is faked: no disk is filled."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from cases.store import LocalObjectStore
from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import Runtime
from ingest import disk_space
from ingest.disk_space import MB, FreeSpaceGuard
from ingest.push_api import PUSH_PATH
from pipeline.bus import MemoryBus
from pipeline.frames import encode_jpeg

REPO = Path(__file__).resolve().parents[1]
TOKEN = "disk-test-token"
JPEG = encode_jpeg(np.zeros((24, 32, 3), np.uint8))


class FakeDisk:
    """Stands in for the free-space probe: records the paths asked about and reports `free` bytes."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.paths: list[str] = []

    def __call__(self, path: str) -> int:
        self.paths.append(path)
        return self.free


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FakeDisk:
    fake = FakeDisk(free=10_000 * MB)
    monkeypatch.setattr(disk_space, "free_bytes", fake)
    return fake


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(disk_space, "monotonic", fake)
    return fake


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_guard_names_the_shortage_and_the_setting(tmp_path: Path, disk: FakeDisk) -> None:
    disk.free = 10 * MB
    guard = FreeSpaceGuard(tmp_path / "evidence", min_free_bytes=512 * MB)
    assert guard.shortage() == (
        f"evidence folder {tmp_path / 'evidence'} has 10 MB free, below the 512 MB floor (evidence.min_free_mb)"
    )


def test_guard_probes_the_nearest_existing_folder(tmp_path: Path, disk: FakeDisk) -> None:
    assert FreeSpaceGuard(tmp_path / "not" / "yet", MB).shortage() is None
    assert disk.paths == [str(tmp_path)]


def test_guard_caches_the_probe_for_its_ttl(tmp_path: Path, disk: FakeDisk, clock: FakeClock) -> None:
    disk.free = 10 * MB
    guard = FreeSpaceGuard(tmp_path, 100 * MB, ttl_s=1.0)
    assert all(guard.shortage() for _ in range(50))
    assert len(disk.paths) == 1
    disk.free = 200 * MB
    clock.now += 1.0
    assert guard.shortage() is None
    assert len(disk.paths) == 2


def test_guard_off_at_zero_and_refusing_when_the_probe_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: str) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(disk_space, "free_bytes", broken)
    assert FreeSpaceGuard(tmp_path, 0).shortage() is None
    assert "free space unknown (Permission denied)" in (FreeSpaceGuard(tmp_path, 1).shortage() or "")


@pytest.fixture
def app_world(tmp_path: Path, disk: FakeDisk, clock: FakeClock):
    """The real app of `feixian serve` on the demo registry with a gateway for ZX-001 (a push point), its
    disk faked at 10 GB free and a floor of 512 MB."""
    settings = {
        "extends": str(REPO / "configs" / "demo.yaml"),
        "plates": {"model": None},
        "evidence": {"min_free_mb": 512},
        "gateways": [{"id": "gw", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "points": ["ZX-001"]}],
    }
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    runtime = Runtime(load_config(path, tmp_path / "data"))
    bus = MemoryBus(100)
    return runtime, bus, TestClient(build_app(runtime, bus))


def _push(client: TestClient, seconds_ago: float):
    return client.post(
        PUSH_PATH.format(point_id="ZX-001"),
        content=JPEG,
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "image/jpeg",
            "X-Capture-Time": (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat(),
        },
    )


def _stored(store: LocalObjectStore) -> dict[str, str]:
    return {k: hashlib.sha256(store.get(k)).hexdigest() for k in store.list("")}


def test_full_disk_refuses_frames_with_507_harms_nothing_and_readyz_names_it(
    app_world, disk: FakeDisk, clock: FakeClock
) -> None:
    runtime, bus, client = app_world
    store = runtime.store
    assert isinstance(store, LocalObjectStore)
    store.put("cases/c1/manifest.json", b'{"case": "c1"}', "application/json")
    store.put("cases/c1/clip.mp4", b"\x00" * 5000, "video/mp4")
    before = _stored(store)
    assert _push(client, 30).status_code == 202
    assert client.get("/readyz").status_code == 200

    disk.free = 100 * MB
    clock.now += 1.0  # the guard asks the disk again once its cached answer is a second old
    r = _push(client, 20)
    assert r.status_code == 507, r.text
    assert "has 100 MB free, below the 512 MB floor (evidence.min_free_mb)" in r.json()["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    [failing] = ready.json()["failing"]
    assert failing.startswith("storage: ") and "below the 512 MB floor" in failing
    # Nothing of the refused frame was queued, and every stored object is as it was.
    assert bus.pending("ZX-001") == 1
    assert _stored(store) == before

    disk.free = 600 * MB
    clock.now += 1.0
    assert _push(client, 10).status_code == 202
    assert client.get("/readyz").status_code == 200
    assert bus.pending("ZX-001") == 2
