"""The item check (pipeline.item_check): stall, cart and goods boxes its classifier doubts are dropped, every item
box is re-scored by the classifier's score of its class (tables, chairs and umbrellas only upwards), other boxes
stay, and the deployed detector runs it; training.item_check builds and measures such a classifier.

The classifier here (`crop_classifiers.colour_classifier`) answers "none" unless a crop is green (goods) or blue
(a chair): logits none 10, goods 20 x mean green, chair 20 x mean blue, every other item 0."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from conftest import SHARED, need
from crop_classifiers import colour_classifier

from feixian.config import load_config
from pipeline.crop_stages import StagedDetector, crop_box
from pipeline.detector import DetectorError
from pipeline.item_check import ITEMS, OUTPUTS, ItemCheck
from pipeline.taxonomy import CLASSES
from training.item_check import MIX, REAL_SHARE, ItemCheckError, _Crops, measure, train

RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR
# rows: the crop's mean red, green, blue (RGB); columns: OUTPUTS
WEIGHT = np.zeros((3, len(OUTPUTS)))
WEIGHT[1, OUTPUTS.index("goods")] = WEIGHT[2, OUTPUTS.index("chair")] = 20
BIAS = np.eye(len(OUTPUTS))[OUTPUTS.index("none")] * 10


@pytest.fixture
def classifier(tmp_path) -> str:
    return str(colour_classifier(tmp_path / "colour.onnx", WEIGHT, BIAS))


def frame_with(*patches) -> np.ndarray:
    frame = np.zeros((360, 640, 3), np.uint8)
    for (x1, y1, x2, y2), colour in patches:
        frame[y1:y2, x1:x2] = colour
    return frame


def detections(boxes, names, scores) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array(boxes, np.float32),
        confidence=np.array(scores, np.float32),
        class_id=np.array([CLASSES.index(n) for n in names]),
        data={"class_name": np.array(names)},
    )


def own_probability(check: ItemCheck, frame: np.ndarray, box, name: str) -> float:
    return float(check.classifier.probabilities([crop_box(frame, box)])[0, OUTPUTS.index(name)])


def test_doubted_stalls_carts_and_goods_are_dropped_and_tables_people_stay(classifier):
    frame = frame_with(((0, 0, 100, 100), GREEN), ((200, 0, 300, 100), RED))
    boxes = [(0, 0, 100, 100), (200, 0, 300, 100), (200, 0, 300, 100), (200, 0, 300, 100), (200, 0, 300, 100)]
    found = detections(boxes, ["goods", "stall", "cart", "table", "person"], [0.9, 0.8, 0.7, 0.6, 0.5])
    kept = ItemCheck(classifier, 0.5).judge(frame, found, CLASSES, 0.5)
    # the red stall and cart are no item; the red table is not one either, but COCO's tables are not overruled
    assert kept.data["class_name"].tolist() == ["goods", "table", "person"]
    assert kept.confidence[1:].tolist() == pytest.approx([0.6, 0.5])
    assert len(found) == 5 and found.confidence.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5])


def test_an_item_box_is_rescored_by_the_classifiers_score_of_its_class(classifier):
    frame = frame_with(((0, 0, 100, 100), GREEN), ((200, 0, 300, 100), BLUE))
    found = detections([(0, 0, 100, 100), (200, 0, 300, 100), (0, 0, 100, 100)], ["goods", "chair", "table"], [0.3] * 3)
    check = ItemCheck(classifier, 0.5)
    goods, chair = (
        own_probability(check, frame, found.xyxy[0], "goods"),
        own_probability(check, frame, found.xyxy[1], "chair"),
    )
    assert goods > 0.9 and chair > 0.9
    judged = ItemCheck(classifier, 0.5, score_weight=0.5).judge(frame, found, CLASSES, 0.5)
    # goods and the chair: the geometric mean with the classifier's sure score, raised; the green table: the
    # classifier scores it no table, but a table is only ever raised, so it keeps its score
    assert judged.confidence.tolist() == pytest.approx([np.sqrt(0.3 * goods), np.sqrt(0.3 * chair), 0.3], abs=1e-6)
    assert ItemCheck(classifier, 0.5, score_weight=0).judge(frame, found, CLASSES, 0.5).confidence.tolist() == (
        pytest.approx([0.3] * 3)
    )
    assert ItemCheck(classifier, 0.5, score_weight=1).judge(frame, found, CLASSES, 0.5).confidence.tolist() == (
        pytest.approx([goods, chair, 0.3], abs=1e-6)
    )


def test_nothing_to_check_returns_the_detections_as_they_were(classifier):
    found = detections([(0, 0, 10, 10)], ["person"], [0.9])
    assert ItemCheck(classifier, 0.5).judge(np.zeros((50, 50, 3), np.uint8), found, CLASSES, 0.5) is found


def test_a_stricter_threshold_drops_a_doubtful_item(classifier):
    # The crop (a tenth of the box around it) is 69 % patch: mean green 0.54, some item at 0.71, not at 0.9.
    frame = frame_with(((100, 100, 200, 200), (0, 200, 0)))
    found = detections([(100, 100, 200, 200)], ["goods"], [0.9])
    assert len(ItemCheck(classifier, 0.5).judge(frame, found, CLASSES, 0.5)) == 1
    assert len(ItemCheck(classifier, 0.9).judge(frame, found, CLASSES, 0.5)) == 0


class _Detector:
    path = "stand-in.onnx"
    iou_threshold = 0.5
    conf_threshold = 0.3

    def __init__(self, class_names, found):
        self.class_names, self._found = class_names, found

    def detect(self, bgr):
        return self._found


def test_the_deployed_detector_runs_the_check_and_drops_a_box_rescored_under_its_threshold(classifier):
    # a green crop is an item, so a cart box on it is not vetoed; but no cart: rescored under 0.3, it leaves
    frame = frame_with(((0, 0, 100, 100), GREEN), ((200, 0, 300, 100), RED))
    found = detections([(0, 0, 100, 100), (0, 0, 100, 100), (200, 0, 300, 100)], ["goods", "cart", "stall"], [0.35] * 3)
    staged = StagedDetector(_Detector(CLASSES, found), [ItemCheck(classifier, 0.5)])
    assert staged.detect(frame).data["class_name"].tolist() == ["goods"]
    with pytest.raises(DetectorError, match="stall"):
        StagedDetector(_Detector(("person", "car"), None), [ItemCheck(classifier, 0.5)])


def test_a_classifier_of_every_output_is_required(tmp_path):
    with pytest.raises(DetectorError, match=rf"\(N, {len(OUTPUTS)}\)"):
        ItemCheck(str(colour_classifier(tmp_path / "two.onnx", np.zeros((3, 2)), np.zeros(2))), 0.5)


def test_the_shipped_settings_name_the_check_and_the_demo_does_without():
    shipped, demo = load_config("configs/default.yaml"), load_config("configs/demo.yaml")
    assert shipped.stage_path("item_check").name == "feixian-itemcheck-v2.onnx"
    assert shipped.stage_path("item_check").is_file()
    assert shipped.settings.model.item_check.score_weight == 0.5
    assert demo.stage_path("item_check") is None


COLOURS = [(40 * k, 255 - 40 * k, 60 + 30 * k) for k in range(len(ITEMS))]


def real_data_like(root, photos: int = 4, images: int = 10, items=ITEMS):
    """A `feixian real-data` layout: composites with one patch of each of `items` labelled, real-train photos with
    no label in them."""
    for sub in ("composites/images", "composites/labels", "real-train/images", "real-train/labels"):
        (root / sub).mkdir(parents=True)
    for k in range(images):
        patches = [((60 + 90 * i, 100, 140 + 90 * i, 200), COLOURS[i]) for i in range(len(items))]
        cv2.imwrite(str(root / "composites" / "images" / f"{k}.png"), frame_with(*patches))
        labels = [
            f"{CLASSES.index(name)} {(100 + 90 * i) / 640} {150 / 360} {80 / 640} {100 / 360}"
            for i, name in enumerate(items)
        ]
        (root / "composites" / "labels" / f"{k}.txt").write_text("\n".join(labels) + "\n")
    for k in range(photos):
        cv2.imwrite(str(root / "real-train" / "images" / f"{k}.png"), frame_with(((0, 0, 640, 360), RED)))
        (root / "real-train" / "labels" / f"{k}.txt").write_text("")
    return root


def test_training_exports_a_classifier_the_check_runs_and_measures(tmp_path):
    weights, detector = (
        need(SHARED / "models" / "yolov8n.pt"),
        need(SHARED / "models" / "yolo11n_coco_320_int8dyn.onnx"),
    )
    data = real_data_like(tmp_path / "data")
    out = tmp_path / "check.onnx"
    report = train(data, detector, weights, out, steps=2, seed=0, batch=8)
    # every labelled item once an image; "none": 3 random boxes a real photo (a COCO detector boxes no item)
    assert report["crops"] == {"none": 12} | {name: 10 for name in ITEMS}
    assert report["none_kinds"] == {"random": 12} and report["real_crops"]["none"] == 12
    check = ItemCheck(str(out), 0.5)
    assert check.classifier.probabilities([np.zeros((96, 96, 3), np.uint8)]).shape == (1, len(OUTPUTS))
    # measured behind a detector of feixian's classes, as deployed
    measured = measure(out, Path("models/feixian-street-v18.onnx"), data / "composites", [data / "real-train"], [])
    real = measured["real"]["real-train"]
    assert real["frames"] == 4
    assert real["stall_cart_goods_per_frame_after"] <= real["stall_cart_goods_per_frame_before"]
    held = measured["heldout"]
    assert set(held["kept"]) == set(held["named_rightly"]) == set(held["boxes_on_items"])


def test_an_output_with_nothing_to_learn_is_a_clear_error(tmp_path):
    data = real_data_like(tmp_path / "data", items=ITEMS[:-1])
    with pytest.raises(ItemCheckError, match="too few crops of some output.*umbrella 0"):
        train(
            data,
            need(SHARED / "models" / "yolo11n_coco_320_int8dyn.onnx"),
            SHARED / "models" / "yolov8n.pt",
            tmp_path / "x.onnx",
            2,
            0,
        )


def test_draws_give_each_item_class_its_share_and_a_few_real_crops_theirs():
    crops = _Crops()
    image = np.zeros((100, 100, 3), np.uint8)
    # rendered and real crops of each item class: the carts' one is a detector's box mined on a labelled cart
    counts = {"stall": (30, 0), "goods": (5, 0), "table": (5, 0), "chair": (50, 2), "umbrella": (5, 0)}
    for name, (rendered, real) in counts.items():
        for k in range(rendered + real):
            crops.add(image, (10, 10, 50, 50), OUTPUTS.index(name), "item", real=k >= rendered)
    crops.add(image, (10, 10, 50, 50), OUTPUTS.index("cart"), "mined", real=False)
    for kind, n in (("mined", 40), ("others", 3), ("random", 7)):
        for _ in range(n):
            crops.add(image, (0, 0, 20, 20), OUTPUTS.index("none"), kind, real=kind == "random")
    w, labels = crops.weights(), np.array(crops.labels)
    kinds, real = np.array(crops.kinds), np.array(crops.real)
    for name in ITEMS:  # each item class alike, however many crops it has
        assert w[labels == OUTPUTS.index(name)].sum() == pytest.approx(MIX["item"])
    chair = labels == OUTPUTS.index("chair")
    assert w[chair & real].sum() == pytest.approx(REAL_SHARE * w[chair].sum())  # 2 real chairs of 52 draw 30 %
    assert w[chair & real][0] > 10 * w[chair & ~real][0]
    for kind in ("mined", "others", "random"):
        assert w[(labels == OUTPUTS.index("none")) & (kinds == kind)].sum() == pytest.approx(MIX[kind])
