"""`feixian eval --data`: detection mAP through the runtime detector, on a model whose output is known.

The model is a constant ONNX graph (the same boxes whatever the image), so every figure below follows
by hand from the labels written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_detector_onnx import anchors, const_model

from training.evaluate import EvalError, evaluate_detection

SIZE = 64  # images at the model's input size: no letterbox, predicted boxes are image pixels
DATASET_NAMES = ["a", "b", "d"]
# The model's own class order differs from the dataset's, and its class "c" is not in the dataset.
MODEL_NAMES = ["b", "a", "c"]
A_BOX = (8.0, 8.0, 24.0, 24.0)  # xyxy
B_BOX = (36.0, 30.0, 60.0, 50.0)
B_MISSED = (4.0, 40.0, 20.0, 60.0)


def yolo_row(cls: int, xyxy: tuple[float, ...]) -> str:
    x0, y0, x1, y1 = xyxy
    return f"{cls} {(x0 + x1) / 2 / SIZE} {(y0 + y1) / 2 / SIZE} {(x1 - x0) / SIZE} {(y1 - y0) / SIZE}"


def center_row(xyxy: tuple[float, ...], model_cls: int, score: float) -> tuple:
    x0, y0, x1, y1 = xyxy
    return ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, model_cls, score)


@pytest.fixture
def model(tmp_path) -> Path:
    pred = anchors(
        center_row(A_BOX, MODEL_NAMES.index("a"), 0.9),
        center_row(B_BOX, MODEL_NAMES.index("b"), 0.8),
        center_row((40.0, 2.0, 60.0, 20.0), MODEL_NAMES.index("c"), 0.95),  # not a dataset class: dropped
        nc=3,
    )
    return const_model(tmp_path / "const.onnx", pred, MODEL_NAMES, input_shape=(1, 3, SIZE, SIZE), gflops="0.5")


@pytest.fixture
def data(tmp_path) -> Path:
    """Two val images: both hold the a and b the model predicts; the second also a b it never finds."""
    root = tmp_path / "ds"
    labels = {
        "val": [
            [yolo_row(0, A_BOX), yolo_row(1, B_BOX)],
            [yolo_row(0, A_BOX), yolo_row(1, B_BOX), yolo_row(1, B_MISSED)],
        ],
        "train": [[yolo_row(0, A_BOX)]],
    }
    for split, images in labels.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k, rows in enumerate(images):
            cv2.imwrite(str(root / "images" / split / f"{k}.jpg"), np.full((SIZE, SIZE, 3), 100, np.uint8))
            (root / "labels" / split / f"{k}.txt").write_text("\n".join(rows) + "\n")
    path = root / "data.yaml"
    path.write_text(
        yaml.safe_dump(
            {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(DATASET_NAMES))}
        )
    )
    return path


def test_map_of_a_known_model(model, data):
    r = evaluate_detection(model, data)
    # a: two hits out of two. b: two hits, then nothing: recall stops at 2/3 (0.66 + 0.01 / 2).
    # d: no instances, so no AP and no share of the mean.
    assert r["per_class_ap50"] == {"a": 0.995, "b": 0.665, "d": None}
    assert r["map50"] == pytest.approx((0.995 + 0.665) / 2)
    assert r["map50_95"] == pytest.approx(r["map50"])  # the boxes are exact
    assert r["instances"] == {"a": 2, "b": 3, "d": 0}
    assert r["images"] == 2 and r["split"] == "val"
    assert set(r["latency_ms"]) == {"mean", "p50", "p95"}
    assert r["frames"] == [{"frame": [SIZE, SIZE], "input": [SIZE, SIZE], "images": 2}]
    facts = r["model"]
    assert facts["classes"] == MODEL_NAMES
    assert facts["input_size"] == [SIZE, SIZE] and facts["dynamic_input"] is False
    assert facts["gflops"] == 0.5
    assert facts["size_bytes"] == model.stat().st_size
    assert facts["version"] is None and facts["data_fingerprint"] is None  # not a `feixian train` export


def test_recall_by_height_counts_what_the_operating_confidence_keeps(model, data):
    small = {"height_px": "<24", "instances": 0, "recall": None}  # every box here is under 24 px tall

    def rows(r: dict, name: str) -> list[dict]:
        return r["recall_by_height"]["per_class"][name]

    default = evaluate_detection(model, data)
    assert rows(default, "b")[0] == {**small, "instances": 3, "recall": 0.6667}  # B_MISSED is never predicted
    assert all(row["instances"] == 0 for row in rows(default, "b")[1:])
    strict = evaluate_detection(model, data, conf=0.85)  # keeps a (0.9), drops b (0.8)
    assert strict["recall_by_height"]["conf"] == 0.85
    assert rows(strict, "a")[0] == {**small, "instances": 2, "recall": 1.0}
    assert rows(strict, "b")[0] == {**small, "instances": 3, "recall": 0.0}
    assert rows(strict, "d")[0] == small
    assert strict["per_class_ap50"] == default["per_class_ap50"]  # AP ranks every score, whatever conf
    by_overlap = default["recall_by_overlap"]["per_class"]
    assert {c: sum(r["instances"] for r in rows) for c, rows in by_overlap.items()} == default["instances"]
    # What the misses were taken for: no box covers B_MISSED; at 0.85 the b boxes themselves are gone.
    assert default["missed_as"]["per_class"] == {"a": {}, "b": {"nothing": 1}, "d": {}}
    assert strict["missed_as"]["per_class"]["b"] == {"nothing": 3}


def test_split_all_and_limit(model, data):
    assert evaluate_detection(model, data, split="all")["images"] == 3
    r = evaluate_detection(model, data, split="all", limit=1)  # train/0.jpg comes first: one a, found
    assert r["images"] == 1
    assert r["per_class_ap50"] == {"a": 0.995, "b": None, "d": None}


def test_cli_writes_the_json(model, data, tmp_path):
    from feixian.cli import main

    out = tmp_path / "out" / "det.json"
    assert main(["eval", "--model", str(model), "--data", str(data), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["per_class_ap50"]["b"] == 0.665


def test_unusable_input_is_refused(model, data, tmp_path, capsys):
    from feixian.cli import main

    with pytest.raises(EvalError, match="no 'test' split"):
        evaluate_detection(model, data, split="test")
    stray = tmp_path / "stray"
    stray.mkdir()
    cv2.imwrite(str(stray / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "stray.yaml").write_text(yaml.safe_dump({"train": "stray", "val": "stray", "names": ["a"]}))
    with pytest.raises(EvalError, match="not under an 'images' folder"):
        evaluate_detection(model, tmp_path / "stray.yaml")
    assert main(["eval", "--model", str(tmp_path / "none.onnx"), "--data", str(data)]) == 2
    assert "model not found" in capsys.readouterr().err
