"""The item check (pipeline.item_check): stall, cart and goods boxes its classifier doubts are dropped, every other
box stays, and the deployed detector runs it; training.item_check builds and measures such a classifier.

The classifier here (`crop_classifiers.colour_classifier`) calls a crop an item when its mean green is over a
half: a green patch is an item, a red or grey one is not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import supervision as sv
from conftest import SHARED, need
from crop_classifiers import colour_classifier

from feixian.config import load_config
from pipeline.crop_stages import StagedDetector
from pipeline.detector import DetectorError
from pipeline.item_check import ItemCheck
from training.item_check import ItemCheckError, measure, train

NAMES = ("person", "car", "truck", "truck_dirty", "truck_uncovered", "stall", "cart", "goods", "table")
RED, GREEN, GREY = (0, 0, 255), (0, 255, 0), (128, 128, 128)  # BGR
# logits (not item, item) = (10, 20 * green): an item when the crop's mean green is over a half
GREEN_IS_ITEM = (np.array([[0, 0], [0, 20], [0, 0]]), np.array([10, 0]))


@pytest.fixture
def check(tmp_path) -> ItemCheck:
    return ItemCheck(str(colour_classifier(tmp_path / "green.onnx", *GREEN_IS_ITEM)), min_confidence=0.5)


def frame_with(*patches) -> np.ndarray:
    frame = np.zeros((360, 640, 3), np.uint8)
    for (x1, y1, x2, y2), colour in patches:
        frame[y1:y2, x1:x2] = colour
    return frame


def detections(boxes, names) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array(boxes, np.float32),
        confidence=np.linspace(0.9, 0.5, len(boxes)).astype(np.float32),
        class_id=np.array([NAMES.index(n) for n in names]),
        data={"class_name": np.array(names)},
    )


def test_doubted_items_are_dropped_and_every_other_box_stays(check):
    frame = frame_with(((0, 0, 100, 100), GREEN), ((200, 0, 300, 100), RED), ((400, 0, 500, 100), GREY))
    boxes = [(0, 0, 100, 100), (200, 0, 300, 100), (400, 0, 500, 100), (200, 0, 300, 100), (400, 0, 500, 100)]
    found = detections(boxes, ["goods", "stall", "cart", "table", "person"])
    kept = check.judge(frame, found, NAMES, 0.5)
    assert kept.data["class_name"].tolist() == ["goods", "table", "person"]  # red stall and grey cart doubted
    assert kept.confidence.tolist() == pytest.approx([0.9, 0.6, 0.5])
    assert len(found) == 5


def test_nothing_to_check_returns_the_detections_as_they_were(check):
    found = detections([(0, 0, 10, 10)], ["person"])
    assert check.judge(np.zeros((50, 50, 3), np.uint8), found, NAMES, 0.5) is found


def test_a_stricter_threshold_drops_a_doubtful_item(tmp_path):
    # The crop (a tenth of the box around it) is 69 % patch: mean green 0.54, an item at 0.71, not at 0.9.
    frame = frame_with(((100, 100, 200, 200), (0, 200, 0)))
    classifier = str(colour_classifier(tmp_path / "green.onnx", *GREEN_IS_ITEM))
    found = detections([(100, 100, 200, 200)], ["goods"])
    assert len(ItemCheck(classifier, 0.5).judge(frame, found, NAMES, 0.5)) == 1
    assert len(ItemCheck(classifier, 0.9).judge(frame, found, NAMES, 0.5)) == 0


class _Detector:
    path = "stand-in.onnx"
    iou_threshold = 0.5

    def __init__(self, class_names, found):
        self.class_names, self._found = class_names, found

    def detect(self, bgr):
        return self._found


def test_the_deployed_detector_runs_the_check_and_refuses_a_detector_without_the_classes(check):
    frame = frame_with(((0, 0, 100, 100), RED))
    staged = StagedDetector(_Detector(NAMES, detections([(0, 0, 100, 100)], ["stall"])), [check])
    assert len(staged.detect(frame)) == 0
    with pytest.raises(DetectorError, match="stall"):
        StagedDetector(_Detector(("person", "car"), None), [check])


def test_a_two_class_classifier_is_required(tmp_path):
    with pytest.raises(DetectorError, match=r"\(N, 2\)"):
        ItemCheck(str(colour_classifier(tmp_path / "three.onnx", np.eye(3), np.zeros(3))), 0.5)


def test_the_shipped_settings_name_the_check_and_the_demo_does_without():
    shipped, demo = load_config("configs/default.yaml"), load_config("configs/demo.yaml")
    assert shipped.stage_path("item_check").name == "feixian-itemcheck-v1.onnx"
    assert shipped.stage_path("item_check").is_file()
    assert demo.stage_path("item_check") is None


def real_data_like(root, photos: int = 4, items: int = 12):
    """A `feixian real-data` layout: composites with green items labelled, real-train photos without any."""
    for sub in ("composites/images", "composites/labels", "real-train/images"):
        (root / sub).mkdir(parents=True)
    for k in range(items):
        cv2.imwrite(str(root / "composites" / "images" / f"{k}.png"), frame_with(((100, 100, 200, 200), GREEN)))
        (root / "composites" / "labels" / f"{k}.txt").write_text(f"7 {150 / 640} {150 / 360} {100 / 640} {100 / 360}\n")
    for k in range(photos):
        cv2.imwrite(str(root / "real-train" / "images" / f"{k}.png"), frame_with(((0, 0, 640, 360), RED)))
    return root


def test_training_exports_a_classifier_the_check_runs_and_measures(tmp_path):
    weights, detector = (
        need(SHARED / "models" / "yolov8n.pt"),
        need(SHARED / "models" / "yolo11n_coco_320_int8dyn.onnx"),
    )
    data = real_data_like(tmp_path / "data")
    out = tmp_path / "check.onnx"
    report = train(data, detector, weights, out, steps=2, seed=0, batch=8)
    assert (report["items"], report["random_real"]) == (12, 12)
    check = ItemCheck(str(out), 0.5)
    assert check.classifier.probabilities([np.zeros((96, 96, 3), np.uint8)]).shape == (1, 2)
    measured = measure(out, detector, data / "composites", [data / "real-train"], [])
    assert measured["real"]["real-train"]["frames"] == 4


def test_no_item_to_learn_is_a_clear_error(tmp_path):
    data = real_data_like(tmp_path / "data", items=0)
    with pytest.raises(ItemCheckError, match="too few items"):
        train(
            data,
            need(SHARED / "models" / "yolo11n_coco_320_int8dyn.onnx"),
            SHARED / "models" / "yolov8n.pt",
            tmp_path / "x.onnx",
            2,
            0,
        )
