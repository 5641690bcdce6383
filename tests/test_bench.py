"""`feixian bench`: what it measures and how it reports (never how fast: that depends on the machine)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml
from test_detector_onnx import anchors, const_model
from test_eval_events import SIZE, VIDEO_S, write_scenario

from feixian.cli import main

KEYS = {
    "detector_ms": float,
    "pipeline_fps": float,
    "pipeline_fps_ungated": float,
    "event_recall_gated": float,
    "event_recall_every_frame": float,
    "points_realtime_2fps": int,
    "peak_rss_mb": float,
    "model": dict,
    "machine": dict,
}


@pytest.fixture
def still_street(tmp_path):
    """A still street scenario (one standing chair the constant model always sees) and settings for it."""
    pred = anchors((32.0, 45.0, 16.0, 20.0, 1, 0.9), nc=2)
    const_model(
        tmp_path / "chair.onnx", pred, ["person", "chair"], input_shape=(1, 3, SIZE, SIZE), feixian_version="b1"
    )
    write_scenario(tmp_path / "scenarios" / "still-street")
    settings = {"points_file": "scenarios/still-street/points.yaml", "model": {"path": "chair.onnx"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return tmp_path


def test_bench_reports_every_figure_with_its_type(still_street, monkeypatch, capsys):
    # No Ultralytics: the baseline is null with the reason, and the pipeline's figures are all there.
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    out = still_street / "bench" / "bench.json"
    argv = ["bench", "--config", str(still_street / "s.yaml"), "--scenarios", str(still_street / "scenarios")]
    assert main(argv + ["--frames", "5", "--points", "3", "--out", str(out), "--quiet"]) == 0
    r = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == r
    for key, kind in KEYS.items():
        assert isinstance(r[key], kind), (key, r[key])
    assert r["baseline_fps"] is None and r["speedup_vs_baseline"] is None
    assert "ultralytics" in r["baseline_error"]
    assert r["model"]["version"] == "b1" and r["machine"]["cpus"] >= 1 and r["machine"]["cpu_model"]
    assert r["detector"]["frames"] == 5 and r["detector"]["frame"] == [SIZE, SIZE]
    # The 10 fps video is sampled at the point's 5 fps, in both replays.
    assert r["pipeline"]["frames"] == VIDEO_S * 5
    # Grey frames never move: after the first frame the gate carries the chair over, rechecking it every 2 s.
    assert 0.8 < r["pipeline"]["gated_share"] < 1
    # The truck passage no model sees is missed either way; the standing chair is found either way.
    assert r["event_recall_gated"] == r["event_recall_every_frame"] == 0.5
    # The fleet: 3 copies of the scenario's point at 2 fps, replayed at once; points held follow from its rate.
    fleet = r["fleet"]
    assert (fleet["points"], fleet["fps_per_point"], fleet["frames"]) == (3, 2.0, 3 * VIDEO_S * 2)
    assert r["points_realtime_2fps"] == int(fleet["frames_per_s"] // 2)
    assert fleet["realtime"] == (fleet["frames_per_s"] >= 6) and r["peak_rss_mb"] >= fleet["peak_rss_mb"] > 0
    # Each copy's standing chair opens its case; the same frames with no network open none.
    free = fleet["without_network"]
    assert fleet["cases"] == 3 and free["cases"] == 0
    assert (free["points"], free["frames"]) == (3, fleet["frames"])
    assert r["points_realtime_2fps_without_network"] == int(free["frames_per_s"] // 2)


def test_bench_refuses_bad_input_with_a_reason(tmp_path, capsys):
    write_scenario(tmp_path / "scenarios" / "still-street")
    settings = {"points_file": "scenarios/still-street/points.yaml", "model": {"path": "m.onnx"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    argv = ["bench", "--config", str(tmp_path / "s.yaml")]
    assert main(argv + ["--scenarios", str(tmp_path / "nowhere")]) == 2
    assert "no scenario folders" in capsys.readouterr().err
    assert main(argv + ["--scenarios", str(tmp_path), "--frames", "0"]) == 2
    assert "--frames and --points must be at least 1" in capsys.readouterr().err
    assert main(argv + ["--scenarios", str(tmp_path), "--points", "0"]) == 2
    assert "--frames and --points must be at least 1" in capsys.readouterr().err
    assert main(["bench", "--config", str(tmp_path / "none.yaml"), "--scenarios", str(tmp_path)]) == 2
    assert "settings not found" in capsys.readouterr().err
