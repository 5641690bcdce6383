"""The model card states what the JSON of `feixian train` and `feixian eval` measured."""

from __future__ import annotations

import json

from training.card import lineage, render_card

TRAIN = {
    "model_yaml": "training/models/feixian-v8p.yaml",
    "gflops": 1.2,
    "epochs": 12,
    "imgsz": 416,
    "seed": 0,
    "train_seconds": 3000.0,
    "data_fingerprint": "ab" * 32,
    "weights": "data/train/feixian-street-v1.onnx",
}
DETECTION = {
    "map50": 0.75,
    "map50_95": 0.5,
    "per_class_ap50": {"chair": 0.3, "car": 0.95},
    "per_class_ap50_95": {"chair": 0.1, "car": 0.7},
    "instances": {"chair": 10, "car": 20},
    "images": 600,
    "latency_ms": {"mean": 40.0, "p50": 39.0, "p95": 50.0},
    "model": {"classes": ["chair", "car"], "input_size": [416, 416], "size_bytes": 3_800_000, "sha256": "cd" * 32},
}
EVENTS = {
    "scenarios": 20,
    "thresholds": {"conf": 0.2, "track": 0.15, "iou": 0.5},
    "families": {
        "vehicle": {"precision": 0.9, "recall": 0.8, "tp": 8, "fp": 1, "fn": 2, "start_error_s": {"max": 3.0}}
    },
    "decoy_events": 1,
}


def test_card_states_training_detection_and_event_figures():
    card = render_card("m", TRAIN, DETECTION, EVENTS, "make train")
    assert "12 epochs at 416 px, seed 0, 50.0 min on this 2-core machine, fine-tuned from" in card
    assert "mAP50 **0.750**" in card and "| chair | 10 | 0.300 | 0.100 |" in card
    assert "| vehicle | 0.900 | 0.800 | 8 | 1 | 2 | 3.0 |" in card
    assert "Run with conf_threshold 0.2, track_threshold 0.15, iou_threshold 0.5." in card
    assert "Classes under AP50 0.8: chair." in card
    assert "from scratch" in render_card("m", {**TRAIN, "weights": None}, DETECTION, None, "make train")
    on_gpu = {**TRAIN, "hardware": "one NVIDIA H200 GPU and 16 CPU cores"}
    card = render_card("m", on_gpu, DETECTION, None, "")
    assert "50.0 min on one NVIDIA H200 GPU and 16 CPU cores, fine-tuned" in card


def test_a_fine_tuned_card_states_how_each_ancestor_was_trained():
    v2 = {**TRAIN, "weights": "data/train/feixian-street-v1.onnx"}
    v1 = {**TRAIN, "epochs": 40, "imgsz": 320, "train_seconds": 3300, "weights": None, "note": "estimated"}
    v3 = {**TRAIN, "epochs": 20, "imgsz": 480, "weights": "data/train/feixian-street-v2.onnx"}
    card = render_card("m", v3, DETECTION, None, "make train", ancestors=[v2, v1])
    assert "| training | 20 epochs at 480 px, seed 0, 50.0 min on this 2-core machine, fine-tuned from " in card
    v2_row = "| training of `data/train/feixian-street-v2.onnx` | 12 epochs at 416 px, seed 0, 50.0 min on this 2-core"
    assert v2_row + " machine, fine-tuned from `data/train/feixian-street-v1.onnx` |" in card
    assert "| training of `data/train/feixian-street-v1.onnx` | 40 epochs at 320 px, seed 0, 55.0 min on this " in card
    assert "2-core machine (estimated), from scratch |" in card
    assert "about 16 px in the 416 px input" in card


def test_a_dynamic_input_model_states_the_input_its_frames_ran_at():
    model = {**DETECTION["model"], "input_size": [480, 480], "dynamic_input": True}
    det = {**DETECTION, "model": model, "frames": [{"frame": [360, 640], "input": [288, 480], "images": 600}]}
    card = render_card("m", TRAIN, det, None, "make train")
    assert "| input | RGB letterboxed into 480x480, padded only to a multiple of 32 (dynamic shape): " in card
    assert "a 640x360 frame at 480x288 |" in card
    assert "| input | 416x416 RGB, letterboxed |" in render_card("m", TRAIN, DETECTION, None, "make train")


def test_lineage_follows_the_summaries_beside_each_base_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v1.train.json").write_text(json.dumps({"epochs": 40}))
    (tmp_path / "v2.train.json").write_text(json.dumps({"epochs": 12, "weights": "v1.onnx"}))
    v3 = {"epochs": 20, "weights": "v2.onnx"}
    assert [t["epochs"] for t in lineage(v3, tmp_path / "v3.train.json")] == [12, 40]
    # A base whose summary is missing (a bureau's own .pt, a model from elsewhere) ends the chain.
    assert lineage({"weights": "other.onnx"}, tmp_path / "x.train.json") == []
    # A summary naming itself as its own base must not loop.
    (tmp_path / "loop.train.json").write_text(json.dumps({"epochs": 1, "weights": "loop.onnx"}))
    assert [t["epochs"] for t in lineage({"weights": "loop.onnx"}, tmp_path / "y.train.json")] == [1]


def test_card_names_the_rule_settings_that_differ_from_the_defaults():
    from feixian.rule_settings import RuleSettings

    rules = RuleSettings.model_validate({"vehicle": {"min_share": 0.6}}).model_dump()
    card = render_card("m", TRAIN, DETECTION, {**EVENTS, "rules": rules}, "make train")
    assert "Rule settings: the defaults (feixian/rule_settings.py), except vehicle.min_share 0.6." in card
    card = render_card("m", TRAIN, DETECTION, {**EVENTS, "rules": RuleSettings().model_dump()}, "make train")
    assert "Rule settings: the defaults (feixian/rule_settings.py)." in card


def test_card_tabulates_what_is_found_by_object_height():
    by_height = {
        "conf": 0.2,
        "iou": 0.5,
        "per_class": {
            "chair": [
                {"height_px": "<24", "instances": 8, "recall": 0.25},
                {"height_px": ">=24", "instances": 2, "recall": 1.0},
            ],
            "car": [
                {"height_px": "<24", "instances": 0, "recall": None},
                {"height_px": ">=24", "instances": 20, "recall": 0.95},
            ],
        },
    }
    card = render_card("m", TRAIN, {**DETECTION, "recall_by_height": by_height}, None, "make train")
    assert "Objects found at confidence 0.2 (IoU 0.5)" in card
    assert "| class | <24 | >=24 |" in card
    assert "| chair | 0.25 (8) | 1.00 (2) |" in card and "| car | - | 0.95 (20) |" in card
    assert "Objects found at confidence" not in render_card("m", TRAIN, DETECTION, None, "make train")


def test_card_says_what_missed_objects_were_taken_for():
    missed = {"conf": 0.2, "iou": 0.5, "per_class": {"chair": {"nothing": 7, "goods": 2}, "car": {}}}
    card = render_card("m", TRAIN, {**DETECTION, "missed_as": missed}, None, "make train")
    assert "Objects missed at confidence 0.2" in card
    assert "- chair: nothing 7, goods 2" in card and "- car:" not in card
    nothing_missed = {**missed, "per_class": {"chair": {}, "car": {}}}
    assert "Objects missed" not in render_card("m", TRAIN, {**DETECTION, "missed_as": nothing_missed}, None, "x")


def test_only_a_card_without_real_footage_figures_says_it_was_trained_on_synthetic_scenes():
    real = {"conf_threshold": 0.2, "iou_threshold": 0.5, "models": {"m": {"path": "m.onnx"}}, "sets": {}, "videos": {}}
    assert "synthetic scenes only" in render_card("m", TRAIN, DETECTION, EVENTS, "make train")
    card = render_card("m", TRAIN, DETECTION, EVENTS, "make train", real=real)
    assert "synthetic scenes only" not in card and "Measured on the real sets above" in card
