"""Shared fixtures: paths to the real material beside the repo, and small generated inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COCO_MODEL = SHARED / "models" / "yolo11n_coco_320_int8dyn.onnx"
HIGHWAY_VIDEO = SHARED / "data" / "video" / "highway_cctv_320x240.avi"
COCO_IMAGES = SHARED / "data" / "images" / "coco"


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
