"""Shared fixtures: paths to the real material beside the repo, and small generated inputs."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COCO_MODEL = SHARED / "models" / "yolo11n_coco_320_int8dyn.onnx"
HIGHWAY_VIDEO = SHARED / "data" / "video" / "highway_cctv_320x240.avi"
COCO_IMAGES = SHARED / "data" / "images" / "coco"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def need(path: Path) -> Path:
    """Skip (with the reason) when a piece of ../shared material is absent."""
    if not path.exists():
        pytest.skip(f"real test material missing: {path}")
    return path


@pytest.fixture
def coco_model() -> Path:
    return need(COCO_MODEL)


@pytest.fixture
def highway_video() -> Path:
    return need(HIGHWAY_VIDEO)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throw-away database on the PostgreSQL server at 127.0.0.1:5432 (skips when unreachable); yields
    its SQLAlchemy URL and drops it afterwards, whatever connections are left."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {e}")
    name = f"feixian_test_{secrets.token_hex(6)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def case_engine(request, tmp_path_factory):
    """A migrated case database on each backend, module-wide (tests empty its tables)."""
    from cases.db import make_engine, upgrade

    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'feixian.db'}"
        else:
            url = stack.enter_context(postgres_database())
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


def push_frames(config: Path, data_dir: Path, point_id: str, frames: list, token: str) -> None:
    """Run `config`'s workers (no sources) and POST `frames` to the push API as a camera gateway would,
    then let the point's worker finish: its cases are in `data_dir` afterwards."""
    from fastapi.testclient import TestClient

    from feixian.app import build_app
    from feixian.config import load_config
    from feixian.runtime import LivePipeline, Runtime
    from pipeline.bus import MemoryBus

    rt = Runtime(load_config(config, data_dir))
    bus = MemoryBus(max_pending=100_000)  # the test pushes faster than a camera; nothing may be refused
    live = LivePipeline(rt, bus, rt.config.points, with_sources=False)
    live.start()
    client = TestClient(build_app(rt, bus, live))
    for f in frames:
        r = client.post(
            f"/api/v1/points/{point_id}/frames",
            content=f.jpeg,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "image/jpeg",
                "X-Capture-Time": f.captured_at.isoformat(),
            },
        )
        assert r.status_code == 202, r.text
    assert live.stop(timeout=120) == []


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
