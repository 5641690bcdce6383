"""Plate reading: localising plates by colour, the shipped reader on real CCPD photos, real plate crops and
rendered plates, withholding what it is unsure of, agreement over several views, and refusing a model that is
not a plate reader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper, save_model

from feixian.config import PlateSettings
from pipeline.plate_province import ProvinceCheck
from pipeline.plates import (
    PlateReader,
    PlateRecognizer,
    find_plate_quads,
    format_plate,
    is_plate_text,
)
from training.plates.calibrate import read_real
from training.plates.evaluate import score
from training.plates.real import BLUE_CROPS, load_crops, split_crops
from training.plates.render import render_plate

ROOT = Path(__file__).resolve().parents[1]
READER = ROOT / "models" / "feixian-plate-v2.onnx"
PROVINCE_CHECK = ROOT / "models" / "feixian-province-v1.onnx"
PLATES = ROOT.parent / "shared" / "data" / "images" / "plates"
SHIPPED = PlateSettings()
# Expected texts as given in shared/data/SOURCES.md; plate boxes (x1, y1, x2, y2) read off the photos by eye.
CCPD = {
    "ccpd_demo0.jpg": ("皖A·195K9", (294, 503, 476, 581)),
    "ccpd_demo1.jpg": ("皖A·UJ299", (206, 502, 397, 604)),
    "ccpd_demo2.jpg": ("皖A·T022C", (299, 440, 506, 549)),
}


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    """The reader as shipped: both thresholds and the province check."""
    check = ProvinceCheck.load(PROVINCE_CHECK, SHIPPED.province_agreed_confidence, SHIPPED.province_model_confidence)
    return PlateReader(
        PlateRecognizer(READER), SHIPPED.min_confidence, SHIPPED.province_confidence, province_check=check
    )


def car_rear(text: str, kind: str, body: tuple[int, int, int], plate_w: int = 180) -> tuple[np.ndarray, tuple]:
    """A 480x320 shaded car body with the plate pasted at a known place; returns the image and the plate box."""
    img = np.zeros((320, 480, 3), np.uint8)
    img[:] = body
    img = (img * np.linspace(0.7, 1.0, 320)[:, None, None]).astype(np.uint8)
    cv2.rectangle(img, (0, 250), (480, 270), (40, 40, 40), -1)  # bumper
    plate = cv2.resize(render_plate(text, kind), (plate_w, round(plate_w * 140 / 440)), interpolation=cv2.INTER_AREA)
    x, y = 150, 180
    img[y : y + plate.shape[0], x : x + plate.shape[1]] = plate
    return img, (x, y, x + plate.shape[1], y + plate.shape[0])


def test_plate_text_shape():
    assert is_plate_text("沪A12345") and is_plate_text("苏EF1234") and is_plate_text("沪A1234学")
    assert is_plate_text("沪AD12345") and is_plate_text("沪A12345F")  # new-energy
    assert not is_plate_text("沪AX12345") and not is_plate_text("沪AD1234F")
    assert not is_plate_text("沪I12345")  # I and O are never issued
    assert not is_plate_text("A123456") and not is_plate_text("沪A1234") and not is_plate_text("沪A·12345")
    assert format_plate("沪A12345") == "沪A·12345"


@pytest.mark.parametrize(
    "kind,body", [("blue", (60, 60, 60)), ("yellow", (30, 110, 200)), ("blue", (150, 60, 20)), ("green", (60, 60, 60))]
)
def test_the_plate_field_is_found_where_it_was_put(kind, body):
    img, (x1, y1, x2, y2) = car_rear("沪A12345", kind, body)
    quads = find_plate_quads(img)
    truth = np.float32([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    # The coloured field lies inside the white rim: within a few pixels of the pasted plate's corners.
    assert any(np.abs(q - truth).max() < 6 for q, c in quads if c == kind), quads


@pytest.mark.skipif(not PLATES.is_dir(), reason="shared/data not present")
@pytest.mark.parametrize("name", sorted(CCPD))
def test_real_ccpd_plates_are_found_first(name):
    quad, colour = find_plate_quads(cv2.imread(str(PLATES / name)))[0]
    x1, y1, x2, y2 = CCPD[name][1]
    found = (*quad.min(axis=0), *quad.max(axis=0))
    inter = max(0, min(x2, found[2]) - max(x1, found[0])) * max(0, min(y2, found[3]) - max(y1, found[1]))
    union = (x2 - x1) * (y2 - y1) + (found[2] - found[0]) * (found[3] - found[1]) - inter
    assert colour == "blue" and inter / union > 0.8, found


@pytest.mark.skipif(not PLATES.is_dir(), reason="shared/data not present")
@pytest.mark.parametrize("name", sorted(CCPD))
def test_real_ccpd_plates_are_read_exactly(reader, name):
    read = reader.read_image(cv2.imread(str(PLATES / name)))
    assert read is not None and read.text == CCPD[name][0]


@pytest.mark.skipif(not (BLUE_CROPS / "labels.csv").is_file(), reason="shared/data not present")
def test_held_out_real_crops_are_read_right_or_withheld(reader):
    _, held_out = split_crops(load_crops())
    figures = score(reader, *read_real(reader.recognizer, held_out))
    assert figures["n"] == 300 and figures["exact"] >= 0.95 and figures["wrong_reported"] <= 0.01, figures


def test_the_held_out_split_is_fixed_by_file_name():
    crops = [(Path(f"{k}.jpg"), str(k)) for k in range(20)]
    calibration, held_out = split_crops(crops, held_out=5)
    assert len(held_out) == 5 and not set(held_out) & set(calibration)
    assert split_crops(crops[::-1], held_out=5)[1] == held_out


def test_a_read_below_either_threshold_is_withheld():
    reader = PlateReader(PlateRecognizer(READER), min_confidence=0.8, province_confidence=0.9)
    sure = [0.99] * 7
    assert reader.accept("沪A12345", sure) == 0.99
    assert reader.accept("沪A12345", [0.99] * 6 + [0.79]) is None  # its weakest character
    assert reader.accept("沪A12345", [0.85] + [0.99] * 6) is None  # the province, above min_confidence
    assert reader.accept("沪I12345", sure) is None  # not a plate's shape
    assert PlateReader(reader.recognizer, 0.8, 0.0).accept("沪A12345", [0.85] + [0.99] * 6) == 0.85


def test_a_blurred_plate_is_withheld_not_guessed(reader):
    img, box = car_rear("沪D62819", "yellow", (90, 90, 90), plate_w=120)
    assert reader.read_image(img) is not None
    blurred = cv2.GaussianBlur(img, (0, 0), 4)
    read = reader.read_image(blurred)
    assert read is None or read.text == "沪D·62819"


@pytest.mark.parametrize(
    "text,kind",
    [
        ("沪D62819", "yellow"),
        ("苏EZ7M31", "blue"),
        ("浙B0K55Q", "yellow"),
        ("晋AD12345", "green"),
        ("贵C88821", "yellow"),
    ],
)
def test_rendered_plates_on_a_car_are_read_within_its_box(reader, text, kind):
    img, (x1, y1, x2, y2) = car_rear(text, kind, (90, 90, 90), plate_w=120)
    read = reader.read_image(img, box=(100, 100, 400, 300))
    assert read is not None and read.text == format_plate(text)
    # Found in the box, reported in image coordinates.
    assert abs(read.quad[:, 0].min() - x1) < 6 and abs(read.quad[:, 1].min() - y1) < 6


def test_no_plate_reads_as_nothing(reader):
    img = np.full((240, 320, 3), 90, np.uint8)
    cv2.rectangle(img, (100, 100), (220, 140), (30, 190, 240), -1)  # a yellow stripe of plate proportions
    assert find_plate_quads(img)  # it is a candidate ...
    assert reader.read_image(img) is None  # ... that does not read as a plate


def test_views_agree_on_the_plate_most_of_them_read(reader):
    good, box = car_rear("沪D62819", "yellow", (90, 90, 90), plate_w=120)
    other, _ = car_rear("沪D62818", "yellow", (90, 90, 90), plate_w=120)
    blank = np.full_like(good, 90)
    found = reader.read_views([(good, None), (blank, None), (other, None), (good, None)])
    assert found is not None
    read, agreeing = found
    assert read.text == "沪D·62819" and agreeing == 2
    assert reader.read_views([(blank, None)]) is None


def test_a_box_outside_the_image_reads_nothing(reader):
    img, _ = car_rear("沪D62819", "yellow", (90, 90, 90))
    assert reader.read_image(img, box=(600, 400, 700, 500)) is None


def tiny_detector(path: Path) -> Path:
    """An ONNX graph with a detector's input and metadata (as an Ultralytics export writes them), no plate-ocr."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])],
        "detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"task": "detect", "names": "{0: 'truck', 1: 'chair'}"})
    save_model(model, path)
    return path


def test_a_detector_is_not_taken_for_a_plate_reader(tmp_path):
    with pytest.raises(ValueError, match="not a plate reader"):
        PlateRecognizer(tiny_detector(tmp_path / "detector.onnx"))
    with pytest.raises(FileNotFoundError):
        PlateRecognizer(ROOT / "models" / "missing.onnx")
