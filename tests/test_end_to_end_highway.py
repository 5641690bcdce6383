"""The whole spine on real footage: file or HTTP push -> detector -> tracker -> rules -> evidence -> cases.

The COCO model knows no dirty trucks, so its `truck` is mapped to `truck_dirty`: every truck passage on
the real highway video must then become exactly one vehicle case. That exercises every stage for real
(decoding, ONNX inference, tracking, the rule, clip encoding, the object store, the database) without
depending on the shipped model's accuracy, which the model's own tests measure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import postgres_database, push_frames

from feixian.cli import main
from feixian.config import load_config
from feixian.runtime import Runtime, replay
from ingest.sources import FileSource

START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
TOKEN = "test-gateway-token"


def write_config(tmp_path: Path, model: Path, video: Path, source: str) -> Path:
    import hashlib

    point = {
        "id": "HWY-001",
        "name": "嘉定 高速出口",
        "town": "工业区",
        "device_id": "CAM-HWY-001",
        "gps": [31.35, 121.22],
        "source": {"kind": "file", "uri": str(video), "start_time": START.isoformat()}
        if source == "file"
        else {"kind": "push"},
        "announced_on": "2024-01-01",
        "legal_review": True,
        "technical_review": True,
        "calibration_valid_until": "2030-01-01",
        "categories": ["vehicle"],
        "detect_fps": 5,
        "zones": [{"id": "road", "kind": "roadway", "polygon": [[0, 0], [320, 0], [320, 240], [0, 240]]}],
    }
    (tmp_path / "points.yaml").write_text(yaml.safe_dump({"points": [point]}, allow_unicode=True), encoding="utf-8")
    settings = {
        "points_file": "points.yaml",
        "model": {"path": str(model), "class_map": {"truck": "truck_dirty", "car": "car"}},
        "gateways": [{"id": "gw", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "points": ["HWY-001"]}],
    }
    path = tmp_path / f"settings-{source}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def cases_json(config: Path, data_dir: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["cases", "list", "--json", "--config", str(config), "--data-dir", str(data_dir)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def file_config(tmp_path, coco_model, highway_video) -> Path:
    return write_config(tmp_path, coco_model, highway_video, "file")


def test_replay_makes_one_case_per_truck_passage_with_verifiable_evidence(file_config, tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["replay", "--config", str(file_config), "--data-dir", str(data)]) == 0
    cases = cases_json(file_config, data, capsys)
    assert len(cases) >= 3, cases  # the video shows several trucks
    assert {c["category"] for c in cases} == {"vehicle"}
    assert {c["subtype"] for c in cases} == {"dirty"}
    assert len({c["event_id"] for c in cases}) == len(cases)
    for c in cases:
        assert c["state"] == "detected" and c["point_id"] == "HWY-001"
        assert {"clip", "manifest"} <= set(c["evidence"])
        assert any(k.startswith("original/") for k in c["evidence"])
        assert any(k.startswith("annotated/") for k in c["evidence"])

    # A second replay of the same footage opens nothing new (idempotent on the event id).
    assert main(["replay", "--config", str(file_config), "--data-dir", str(data)]) == 0
    assert [c["event_id"] for c in cases_json(file_config, data, capsys)] == [c["event_id"] for c in cases]

    args = ["evidence", "verify", "--all", "--config", str(file_config), "--data-dir", str(data)]
    assert main(args) == 0
    clip = data / "evidence" / cases[0]["evidence"]["clip"]
    assert clip.is_file()
    raw = bytearray(clip.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    clip.chmod(0o644)
    clip.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(args) != 0
    assert cases[0]["evidence"]["clip"] in capsys.readouterr().out


def test_pushing_frames_over_http_gives_the_same_cases_as_reading_the_file(tmp_path, coco_model, highway_video, capsys):
    file_cfg = write_config(tmp_path, coco_model, highway_video, "file")
    assert main(["replay", "--config", str(file_cfg), "--data-dir", str(tmp_path / "from-file")]) == 0
    from_file = cases_json(file_cfg, tmp_path / "from-file", capsys)

    push_cfg = write_config(tmp_path, coco_model, highway_video, "push")
    frames = list(FileSource("HWY-001", highway_video, 5, start_time=START).frames())
    push_frames(push_cfg, tmp_path / "from-push", "HWY-001", frames, TOKEN)
    from_push = cases_json(push_cfg, tmp_path / "from-push", capsys)
    key = lambda c: (c["event_id"], c["subtype"], c["started_at"])  # noqa: E731
    assert sorted(map(key, from_push)) == sorted(map(key, from_file))


@pytest.mark.postgres
def test_replay_on_postgresql_gives_the_same_cases(file_config, tmp_path, capsys, monkeypatch):
    assert main(["replay", "--config", str(file_config), "--data-dir", str(tmp_path / "sqlite")]) == 0
    on_sqlite = cases_json(file_config, tmp_path / "sqlite", capsys)
    with postgres_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        assert main(["replay", "--config", str(file_config), "--data-dir", str(tmp_path / "pg")]) == 0
        on_pg = cases_json(file_config, tmp_path / "pg", capsys)
        pg_dir = str(tmp_path / "pg")
        assert main(["evidence", "verify", "--all", "--config", str(file_config), "--data-dir", pg_dir]) == 0
    key = lambda c: (c["event_id"], c["category"], c["subtype"], c["started_at"], c["evidence"])  # noqa: E731
    assert [key(c) for c in on_pg] == [key(c) for c in on_sqlite]


def test_runtime_replay_reports_per_point_stats(file_config, tmp_path):
    rt = Runtime(load_config(file_config, tmp_path / "d"))
    result = replay(rt)
    stats = result.stats["HWY-001"]
    assert stats.frames == 150  # 30 s at 5 fps
    assert stats.cases == stats.events >= 3 and not result.errors
