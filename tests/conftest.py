"""Shared fixtures: paths to the real material beside the repo, and small generated inputs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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
