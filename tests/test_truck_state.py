"""The truck-state stage (pipeline.truck_state): crops, the judgement that overrides the detector's truck class,
and its place in the deployed detector.

The classifier here is a real ONNX graph built by the test whose answer is plain to predict
(`crop_classifiers.colour_classifier`): the softmax of the crop's mean red, green and blue, sharpened. A red
truck is judged clean, a green one dirty, a blue one uncovered, a grey one stays unsure (all three equal) and
so plain."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import supervision as sv
from conftest import SHARED, need
from crop_classifiers import colour_classifier
from onnx import TensorProto, helper

from feixian.config import load_config
from pipeline.crop_stages import CROP_SIZE, StagedDetector, crop_box
from pipeline.detector import DetectorError
from pipeline.truck_state import STATES, TruckStateJudge
from training.truck_state import TruckStateError, collect, measure, train

NAMES = ("person", "car", "truck", "truck_dirty", "truck_uncovered", "stall")
RED, GREEN, BLUE, GREY = (0, 0, 255), (0, 255, 0), (255, 0, 0), (128, 128, 128)  # BGR


@pytest.fixture
def judge(tmp_path) -> TruckStateJudge:
    # The crop's dominant colour is its state: red plain, green dirty, blue uncovered.
    return TruckStateJudge(str(colour_classifier(tmp_path / "colour.onnx", 20 * np.eye(3), np.zeros(3))), 0.7)


def frame_with(*patches: tuple[tuple[int, int, int, int], tuple[int, int, int]]) -> np.ndarray:
    frame = np.zeros((360, 640, 3), np.uint8)
    for (x1, y1, x2, y2), colour in patches:
        frame[y1:y2, x1:x2] = colour
    return frame


def detections(boxes: list[tuple[int, int, int, int]], names: list[str], scores: list[float]) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array(boxes, np.float32),
        confidence=np.array(scores, np.float32),
        class_id=np.array([NAMES.index(n) for n in names]),
        data={"class_name": np.array(names)},
    )


def test_crop_keeps_the_aspect_and_pads_the_rest():
    frame = frame_with(((100, 100, 300, 150), RED))
    crop = crop_box(frame, (100, 100, 300, 150), context=0.0)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    # 200x50 scaled to 96x24: red rows in the middle, the letterbox grey above and below.
    red_rows = np.flatnonzero((crop == RED).all(axis=2).all(axis=1))
    assert len(red_rows) == 24 and red_rows[0] == 36
    assert (crop[0] == 114).all() and (crop[-1] == 114).all()


def test_crop_of_a_box_outside_the_frame_is_all_padding():
    assert (crop_box(np.zeros((50, 50, 3), np.uint8), (60, 60, 90, 90)) == 114).all()


def test_each_truck_takes_the_state_its_crop_shows_and_other_boxes_stay(judge):
    frame = frame_with(((20, 20, 120, 80), RED), ((200, 20, 300, 80), GREEN), ((400, 20, 500, 80), BLUE))
    found = detections(
        [(20, 20, 120, 80), (200, 20, 300, 80), (400, 20, 500, 80), (20, 200, 60, 300)],
        ["truck_dirty", "truck", "truck", "person"],
        [0.9, 0.8, 0.7, 0.6],
    )
    judged = judge.judge(frame, found, NAMES, iou_threshold=0.5)
    assert judged.data["class_name"].tolist() == ["truck", "truck_dirty", "truck_uncovered", "person"]
    assert [NAMES[i] for i in judged.class_id] == judged.data["class_name"].tolist()
    assert judged.confidence.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert found.data["class_name"][0] == "truck_dirty"  # the caller's detections are not changed


def test_an_unsure_judgement_leaves_a_plain_truck(judge):
    frame = frame_with(((20, 20, 120, 80), GREY))
    judged = judge.judge(frame, detections([(20, 20, 120, 80)], ["truck_uncovered"], [0.9]), NAMES, 0.5)
    assert judged.data["class_name"].tolist() == ["truck"]


def test_one_truck_boxed_as_two_states_becomes_one_box_at_its_best_score(judge):
    frame = frame_with(((100, 100, 300, 200), GREEN))
    found = detections(
        [(100, 100, 300, 200), (104, 102, 302, 198), (400, 100, 500, 200)],
        ["truck", "truck_dirty", "car"],
        [0.6, 0.8, 0.5],
    )
    judged = judge.judge(frame, found, NAMES, iou_threshold=0.5)
    assert judged.data["class_name"].tolist() == ["truck_dirty", "car"]
    assert judged.confidence.tolist() == pytest.approx([0.8, 0.5])
    assert judged.xyxy[0].tolist() == [104, 102, 302, 198]


def test_no_truck_no_classifier_run(judge):
    found = detections([(0, 0, 10, 10)], ["person"], [0.9])
    assert judge.judge(np.zeros((50, 50, 3), np.uint8), found, NAMES, 0.5) is found


class _Detector:
    path = "stand-in.onnx"
    iou_threshold = 0.5
    conf_threshold = 0.1
    metadata = {"feixian_model": "stand-in"}

    def __init__(self, class_names, found):
        self.class_names, self._found = class_names, found

    def detect(self, bgr):
        return self._found


def test_the_judged_detector_judges_what_its_detector_found_and_names_the_same_model(judge):
    frame = frame_with(((20, 20, 120, 80), BLUE))
    detector = StagedDetector(_Detector(NAMES, detections([(20, 20, 120, 80)], ["truck"], [0.9])), [judge])
    assert detector.detect(frame).data["class_name"].tolist() == ["truck_uncovered"]
    assert detector.metadata == {"feixian_model": "stand-in"}


def test_a_detector_without_the_state_classes_is_refused(judge):
    with pytest.raises(DetectorError, match="truck_dirty"):
        StagedDetector(_Detector(("person", "car", "truck"), None), [judge])


def test_a_classifier_of_the_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "two.onnx"
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["states"])],
        "wrong",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, CROP_SIZE, CROP_SIZE])],
        [helper.make_tensor_value_info("states", TensorProto.FLOAT, ["n", 3, 1, 1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(DetectorError, match=f"\\(N, {len(STATES)}\\)"):
        TruckStateJudge(str(path), 0.7)


def test_a_missing_classifier_is_refused_with_its_path(tmp_path):
    with pytest.raises(DetectorError, match="nowhere.onnx"):
        TruckStateJudge(str(tmp_path / "nowhere.onnx"), 0.7)


def test_the_settings_name_the_classifier_beside_them(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "points.yaml").write_text("points: []\n")
    settings = tmp_path / "conf" / "settings.yaml"
    settings.write_text("points_file: points.yaml\nmodel: {path: m.onnx, truck_state: {path: ../models/t.onnx}}\n")
    config = load_config(settings)
    assert config.stage_path("truck_state") == (tmp_path / "models" / "t.onnx").resolve()
    assert config.settings.model.truck_state.min_confidence == 0.7
    # A file elsewhere that extends it names the same classifier: the path is the file's that wrote it.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "bureau.yaml").write_text("extends: ../conf/settings.yaml\n")
    assert load_config(tmp_path / "site" / "bureau.yaml").stage_path("truck_state") == config.stage_path("truck_state")


def coloured_truck_set(root: Path, images: int = 10) -> Path:
    """A YOLO folder like a `feixian real-data` set's composites: in each image a red plain truck, a green dirty
    one and a blue uncovered one, a person, and a truck too small to judge."""
    (root / "composites" / "images").mkdir(parents=True)
    (root / "composites" / "labels").mkdir(parents=True)
    for k in range(images):
        frame = frame_with(((20, 20, 120, 80), RED), ((200, 20, 300, 80), GREEN), ((400, 20, 500, 80), BLUE))
        cv2.imwrite(str(root / "composites" / "images" / f"{k}.png"), frame)
        rows = [(2, 20, 20, 120, 80), (3, 200, 20, 300, 80), (4, 400, 20, 500, 80), (0, 20, 200, 60, 300)]
        rows.append((2, 600, 300, 605, 305))  # 5 px: below MIN_BOX_PX
        (root / "composites" / "labels" / f"{k}.txt").write_text(
            "".join(f"{c} {(a + b) / 1280} {(d + e) / 720} {(b - a) / 640} {(e - d) / 360}\n" for c, a, d, b, e in rows)
        )
    return root


def test_collect_takes_every_judgeable_truck_with_its_state(tmp_path):
    regions, boxes, states = collect([coloured_truck_set(tmp_path, images=2) / "composites"])
    assert states.tolist() == [0, 1, 2, 0, 1, 2]
    x1, y1, x2, y2 = boxes[0]
    assert (regions[0][int(y1) + 1 : int(y2) - 1, int(x1) + 1 : int(x2) - 1] == RED).all()


def test_training_exports_a_classifier_the_stage_runs_and_measures(tmp_path):
    weights = need(SHARED / "models" / "yolov8n.pt")
    data = coloured_truck_set(tmp_path / "data")
    out = tmp_path / "state.onnx"
    report = train(data, weights, out, epochs=1, seed=0, samples_per_epoch=16, batch=8, layers=3)
    assert report["trucks"] == {"truck": 10, "truck_dirty": 10, "truck_uncovered": 10}
    judge = TruckStateJudge(str(out), min_confidence=0.5)
    probs = judge.classifier.probabilities([np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8)] * 2)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    measured = measure(out, [data / "composites"], min_confidence=0.5)
    assert {t: sum(row.values()) for t, row in measured["stage"]["confusion"].items()} == dict.fromkeys(STATES, 10)


def test_too_few_trucks_of_a_state_is_a_clear_error(tmp_path):
    data = coloured_truck_set(tmp_path / "data", images=3)
    with pytest.raises(TruckStateError, match="too few trucks"):
        train(data, SHARED / "models" / "yolov8n.pt", tmp_path / "x.onnx", 1, 0, 16)
