"""A small generated scenario for the fault tests: N points replaying the same still street (64x64 grey video) with
a constant detector that sees one chair standing in each point's shop-front zone, so every point raises exactly one
occupation case, at a different time of its clip (the dwell differs per point)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import yaml
from test_detector_onnx import anchors, const_model

from feixian.domain import Category, Point, Source, Zone
from pipeline.video import Mp4Writer

SIZE = 64
FPS = 10
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def write_scenario(root: Path, points: int = 4, video_s: float = 30.0, **settings) -> Path:
    """Write the model, the video, the points file and a settings file under `root`; returns the settings file.
    `settings` are merged into the settings file's top level (e.g. `evidence={...}`)."""
    root.mkdir(parents=True, exist_ok=True)
    pred = anchors((32.0, 45.0, 16.0, 20.0, 1, 0.9), nc=2)
    const_model(root / "chair.onnx", pred, ["person", "chair"], input_shape=(1, 3, SIZE, SIZE), feixian_version="t1")
    with Mp4Writer(root / "video.mp4", FPS, (SIZE, SIZE)) as writer:
        for _ in range(int(video_s * FPS)):
            writer.write(np.full((SIZE, SIZE, 3), 120, np.uint8))
    listed = [_point(i).model_dump(mode="json", exclude_none=True) for i in range(points)]
    (root / "points.yaml").write_text(yaml.safe_dump({"points": listed}, allow_unicode=True), encoding="utf-8")
    config = {"points_file": "points.yaml", "model": {"path": "chair.onnx", "conf_threshold": 0.35}} | settings
    path = root / "settings.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _point(i: int) -> Point:
    return Point(
        id=f"FLT-{i:03d}",
        name=f"故障测试 {i}",
        town="t",
        device_id=f"d{i}",
        gps=(31.0, 121.0),
        source=Source(kind="file", uri="video.mp4", start_time=START),
        announced_on=date(2024, 1, 1),
        legal_review=True,
        technical_review=True,
        zones=[Zone(id="front", kind="no_occupation", polygon=[(0, 30), (63, 30), (63, 63), (0, 63)])],
        categories=[Category.OCCUPATION],
        dwell_seconds=5.0 + 3 * i,
        detect_fps=5,
    )


def sqlite_event_ids(data_dir: Path) -> list[str]:
    """Event ids of the cases in `data_dir`'s SQLite database, one per case row (a doubled case shows twice)."""
    db = data_dir / "feixian.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return sorted(row[0] for row in conn.execute("select event_id from cases"))
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def cases_json(stdout: str) -> list[dict]:
    return json.loads(stdout)
