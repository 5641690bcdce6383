"""Acceptance of the spine on the demo scenario with the shipped model, exactly as an operator runs it:
`feixian replay --config configs/demo.yaml --data-dir D`, then `feixian cases list --json`.

Every ground-truth event of the demo must become exactly one case and no decoy may raise one, on SQLite
and on PostgreSQL (`DATABASE_URL`) alike. The demo
footage is generated the way `make run` does (into `data/demo`, reused when present).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from conftest import postgres_database, push_frames

from feixian.cli import main
from feixian.config import load_config
from ingest.sources import FileSource
from training.evaluate import score_scenario

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "demo.yaml"
DEMO = REPO / "data" / "demo"


@pytest.fixture(scope="module")
def demo() -> Path:
    if not (DEMO / ".complete").is_file():
        assert main(["synth", "--demo", "--out", str(DEMO)]) == 0
        (DEMO / ".complete").touch()
    return DEMO


def replay_cases(data: Path) -> list[dict]:
    """`feixian replay` of the demo into `data`, then `feixian cases list --json`."""
    cfg = load_config(CONFIG)
    if not cfg.model_path.is_file():
        pytest.fail(f"shipped model missing: {cfg.model_path}")
    assert main(["replay", "--config", str(CONFIG), "--data-dir", str(data)]) == 0
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["cases", "list", "--json", "--config", str(CONFIG), "--data-dir", str(data)]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def on_sqlite(demo, tmp_path_factory) -> tuple[Path, list[dict]]:
    data = tmp_path_factory.mktemp("demo") / "run"
    return data, replay_cases(data)


def test_demo_replay_turns_every_true_event_into_exactly_one_case(demo, on_sqlite):
    data, cases = on_sqlite
    assert {"occupation", "vehicle"} <= {c["category"] for c in cases}
    for name, point_id in (("street", "JDZ-001"), ("road", "GYQ-001")):
        scenario = json.loads((demo / "scenarios" / name / "scenario.json").read_text(encoding="utf-8"))
        result = score_scenario(scenario, [c for c in cases if c["point_id"] == point_id], plates_read=True)
        for family, r in result.items():
            assert r["fn"] == 0, f"{name}/{family}: missed {r['unmatched_truth']}"
            assert r["fp"] == 0, f"{name}/{family}: spurious {r['unmatched_found']}"
            assert r["decoy_events"] == 0
            # A plate the reader is unsure of names no party; a wrong party would be worse than none.
            assert all(exact for exact, read in r["plates"] if read), f"{name}: a plate was misread"
    assert main(["evidence", "verify", "--all", "--config", str(CONFIG), "--data-dir", str(data)]) == 0


@pytest.mark.postgres
def test_the_same_replay_on_postgresql_files_the_same_cases(on_sqlite, tmp_path, monkeypatch):
    _, cases = on_sqlite
    with postgres_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        on_pg = replay_cases(tmp_path / "pg")
        monkeypatch.delenv("DATABASE_URL")
    key = lambda c: (c["event_id"], c["category"], c["subtype"], c["started_at"], c["evidence"])  # noqa: E731
    assert sorted(map(key, on_pg)) == sorted(map(key, cases))


@pytest.mark.slow
def test_pushing_the_street_video_over_http_files_the_same_cases(on_sqlite, tmp_path):
    """A gateway pushing the demo street camera's frames gets the cases that reading the file gave."""
    import hashlib

    cfg = load_config(CONFIG)
    street = cfg.point("JDZ-001")
    points = yaml.safe_load((CONFIG.parent / "demo-points.yaml").read_text(encoding="utf-8"))
    (push_point,) = [p for p in points["points"] if p["id"] == "JDZ-001"]
    push_point["source"] = {"kind": "push"}
    (tmp_path / "points.yaml").write_text(yaml.safe_dump({"points": [push_point]}, allow_unicode=True), "utf-8")
    token = "street-gateway-token"
    settings = {
        "points_file": "points.yaml",
        # The thresholds of the replay it is compared with: only the way frames arrive differs.
        "model": {**cfg.settings.model.model_dump(mode="json", exclude_none=True), "path": str(cfg.model_path)},
        "gateways": [{"id": "gw", "token_sha256": hashlib.sha256(token.encode()).hexdigest(), "points": ["JDZ-001"]}],
    }
    push_cfg = tmp_path / "settings.yaml"
    push_cfg.write_text(yaml.safe_dump(settings), encoding="utf-8")
    frames = FileSource("JDZ-001", cfg.source_path(street), street.detect_fps, start_time=street.source.start_time)
    push_frames(push_cfg, tmp_path / "pushed", "JDZ-001", list(frames.frames()), token)

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["cases", "list", "--json", "--config", str(push_cfg), "--data-dir", str(tmp_path / "pushed")]) == 0
    key = lambda c: (c["event_id"], c["category"], c["subtype"], c["started_at"])  # noqa: E731
    from_file = sorted(key(c) for c in on_sqlite[1] if c["point_id"] == "JDZ-001")
    assert from_file and sorted(map(key, json.loads(out.getvalue()))) == from_file
