"""`feixian bench`: what it times and how it reports (never how fast: that depends on the machine)."""

from __future__ import annotations

import json

import yaml
from test_detector_onnx import anchors, const_model
from test_eval_events import SIZE, VIDEO_S, write_scenario

from feixian.cli import main


def test_bench_times_the_detector_and_a_whole_replay(tmp_path, capsys):
    pred = anchors((32.0, 45.0, 16.0, 20.0, 1, 0.9), nc=2)
    model = const_model(
        tmp_path / "chair.onnx", pred, ["person", "chair"], input_shape=(1, 3, SIZE, SIZE), feixian_version="b1"
    )
    write_scenario(tmp_path / "scenarios" / "still-street")
    settings = {"points_file": "scenarios/still-street/points.yaml", "model": {"path": "chair.onnx"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    out = tmp_path / "bench" / "bench.json"
    argv = ["bench", "--config", str(tmp_path / "s.yaml"), "--scenarios", str(tmp_path / "scenarios")]
    assert main(argv + ["--frames", "5", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["model"]["version"] == "b1" and r["model"]["path"] == str(model)
    det = r["detector"]
    assert det["frames"] == 5 and det["frame"] == det["input"] == [SIZE, SIZE]
    assert set(det["latency_ms"]) == {"mean", "p50", "p95"}
    pipe = r["pipeline"]
    # The 10 fps video is sampled at the point's 5 fps: every other frame goes through the pipeline.
    assert pipe["scenarios"]["still-street"]["frames"] == pipe["frames"] == VIDEO_S * 5
    assert pipe["detect_fps"] == [5]
    assert pipe["frames_per_s"] > 0 and pipe["cameras_at_detect_fps"] == round(pipe["frames_per_s"] / 5, 1)
    assert r["machine"]["cpus"] >= 1
    assert json.loads(capsys.readouterr().out) == r


def test_bench_refuses_bad_input_with_a_reason(tmp_path, capsys):
    write_scenario(tmp_path / "scenarios" / "still-street")
    settings = {"points_file": "scenarios/still-street/points.yaml", "model": {"path": "m.onnx"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    argv = ["bench", "--config", str(tmp_path / "s.yaml")]
    assert main(argv + ["--scenarios", str(tmp_path / "nowhere")]) == 2
    assert "no scenario folders" in capsys.readouterr().err
    assert main(argv + ["--scenarios", str(tmp_path), "--frames", "0"]) == 2
    assert "--frames must be at least 1" in capsys.readouterr().err
    assert main(["bench", "--config", str(tmp_path / "none.yaml"), "--scenarios", str(tmp_path)]) == 2
    assert "settings not found" in capsys.readouterr().err
