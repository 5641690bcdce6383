"""`feixian tune-rules`: grid parsing, and rule settings ranked from one recorded replay."""

from __future__ import annotations

import json

import pytest
from test_detector_onnx import anchors, const_model
from test_eval_events import SIZE, write_scenario

from feixian.cli import main
from feixian.rule_settings import RuleSettings
from training.tune_rules import TuneError, candidates, parse_grid


def test_grid_values_are_checked_one_by_one():
    grid = parse_grid(["vehicle.min_share=0.4, 0.6", "vehicle.min_cut_frames=20,null"], RuleSettings())
    assert grid == {"vehicle.min_share": [0.4, 0.6], "vehicle.min_cut_frames": [20, None]}
    with pytest.raises(TuneError, match=r"no rule setting 'vehicle.min_shar'.*vehicle\.min_share"):
        parse_grid(["vehicle.min_shar=0.4"], RuleSettings())
    with pytest.raises(TuneError, match=r"vehicle.min_share=1.5: .*less than or equal to 1"):
        parse_grid(["vehicle.min_share=0.5,1.5"], RuleSettings())
    with pytest.raises(TuneError, match="expected family.setting=value"):
        parse_grid(["min_share"], RuleSettings())


def test_an_invalid_combination_is_reported_not_run():
    grid = parse_grid(["vehicle.merge_within_s=0.5,3"], RuleSettings())
    (ok_set, ok), (bad_set, bad) = candidates(grid, RuleSettings())
    assert ok_set == {"vehicle.merge_within_s": 0.5} and ok.vehicle.merge_within_s == 0.5
    assert bad_set == {"vehicle.merge_within_s": 3.0} and "shorter than lost_after_s" in bad


@pytest.fixture
def street(tmp_path):
    """A chair standing in the shop front and a dirty truck standing on the road all through the video;
    the ground truth has the chair and a dirty truck passage."""
    pred = anchors((32.0, 45.0, 16.0, 20.0, 1, 0.9), (32.0, 14.0, 30.0, 16.0, 2, 0.9), nc=3)
    model = const_model(
        tmp_path / "m.onnx",
        pred,
        ["person", "chair", "truck_dirty"],
        input_shape=(1, 3, SIZE, SIZE),
        feixian_version="t1",
    )
    write_scenario(tmp_path / "scenarios" / "still-street")
    return tmp_path, model


def test_settings_are_ranked_from_a_replay_of_the_recording(street, capsys):
    tmp_path, model = street
    argv = ["tune-rules", "--model", str(model), "--scenarios", str(tmp_path / "scenarios")]
    rec = tmp_path / "rec" / "m.rec"
    # 70 frames of the truck: judged with min_frames 8, a glimpse (no evidence) with 100.
    grid = ["--grid", "vehicle.min_frames=100,8", "--grid", "vehicle.merge_within_s=0.5,5"]
    assert main(argv + grid + ["--recording", str(rec), "--out", str(tmp_path / "t.json")]) == 0
    r = json.loads((tmp_path / "t.json").read_text())
    assert r["recorded"]["replay_matches_eval"] is True
    assert r["recorded"]["eval"]["vehicle"]["tp"] == 1 and r["recorded"]["eval"]["occupation"]["tp"] == 1
    best = r["best"]
    assert best["set"] == {"vehicle.min_frames": 8, "vehicle.merge_within_s": 0.5} and best["errors"] == 0
    assert best["rules"]["vehicle"]["min_frames"] == 8
    assert best["rules"]["occupation"] == r["base"]["rules"]["occupation"]
    ranked = [(x["set"]["vehicle.min_frames"], x.get("errors"), "invalid" in x) for x in r["results"]]
    assert ranked == [(8, 0, False), (100, 1, False), (100, None, True), (8, None, True)]
    assert r["results"][1]["families"]["vehicle"]["fn"] == 1
    assert rec.is_file()
    capsys.readouterr()

    # The second run reads the recording instead of replaying the video; its figures keep the rules
    # they were recorded with, whatever the base rules of this run.
    (tmp_path / "scenarios" / "still-street" / "video.mp4").unlink()
    settings = {
        "points_file": "scenarios/still-street/points.yaml",
        "model": {"path": "x.onnx", "conf_threshold": 0.35},
    }
    settings["rules"] = {"vehicle": {"min_frames": 100}}
    (tmp_path / "s.yaml").write_text(json.dumps(settings), encoding="utf-8")
    assert main(argv + ["--config", str(tmp_path / "s.yaml"), "--recording", str(rec)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["best"]["errors"] == 1 and r["base"]["replay"]["vehicle"]["fn"] == 1
    assert r["recorded"]["rules"]["vehicle"]["min_frames"] == 8 and r["recorded"]["replay_matches_eval"] is True


def test_a_recording_of_another_model_is_refused(street, capsys):
    tmp_path, model = street
    rec = tmp_path / "m.rec"
    argv = ["tune-rules", "--scenarios", str(tmp_path / "scenarios"), "--recording", str(rec)]
    assert main(argv + ["--model", str(model)]) == 0
    other = const_model(
        tmp_path / "o.onnx", anchors((32.0, 45.0, 16.0, 20.0, 1, 0.5), nc=2), ["person", "chair"], feixian_version="t2"
    )
    capsys.readouterr()
    assert main(argv + ["--model", str(other)]) == 2
    assert "recorded with another model; delete it" in capsys.readouterr().err
    rec.write_bytes(b"not a pickle")
    assert main(argv + ["--model", str(model)]) == 2
    assert "not a readable recording" in capsys.readouterr().err
