"""The province character's own check: the shipped classifier names province glyphs of rendered plates it
never saw and of held-out real crops; a province the recogniser is unsure of counts only where the
classifier names the same one confidently; the settings keys are bounded and both settings files ship it."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from feixian.config import PlateSettings, load_config
from pipeline.plate_province import ProvinceCheck, ProvinceClassifier, province_cell
from pipeline.plates import PROVINCES, PlateReader, PlateRecognizer
from training.plates.real import BLUE_CROPS, load_crops, split_crops
from training.plates.render import KINDS, localised_crop, random_green_text, random_text

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = ROOT / "models" / "feixian-province-v1.onnx"
READER = ROOT / "models" / "feixian-plate-v2.onnx"
EVAL_SEED = 5  # `feixian plates eval`'s rendering seed: never trained on
CROP = np.zeros((48, 192, 3), np.uint8)
SURE = [0.99] * 6  # the characters after the province


class Named:
    """A classifier that names one province with one probability, whatever it is shown."""

    def __init__(self, province: str, probability: float):
        self.verdict = (province, probability)

    def classify(self, crops):
        return [self.verdict for _ in crops]


@pytest.fixture(scope="module")
def recognizer() -> PlateRecognizer:
    return PlateRecognizer(READER)


@pytest.fixture(scope="module")
def classifier() -> ProvinceClassifier:
    return ProvinceClassifier(CLASSIFIER)


def reader_naming(recognizer: PlateRecognizer, province: str, probability: float) -> PlateReader:
    check = ProvinceCheck(Named(province, probability), agreed_confidence=0.5, classifier_confidence=0.9)  # type: ignore[arg-type]
    return PlateReader(recognizer, 0.85, 0.95, province_check=check)


def test_an_unsure_province_counts_where_the_classifier_names_it(recognizer):
    assert reader_naming(recognizer, "沪", 0.97).accept("沪A12345", [0.6, *SURE], CROP) == 0.97
    assert PlateReader(recognizer, 0.85, 0.95).accept("沪A12345", [0.6, *SURE], CROP) is None  # no check


def test_the_check_withholds_a_province_the_classifier_disagrees_with(recognizer):
    assert reader_naming(recognizer, "苏", 0.99).accept("沪A12345", [0.9, *SURE], CROP) is None


@pytest.mark.parametrize(
    "probability,province_score,others,why",
    [
        (0.89, 0.9, SURE, "the classifier is not sure enough"),
        (0.99, 0.49, SURE, "the recogniser's own province score is too low"),
        (0.99, 0.9, [0.99] * 5 + [0.84], "another character is below min_confidence"),
    ],
)
def test_a_read_below_a_threshold_is_withheld(recognizer, probability, province_score, others, why):
    assert reader_naming(recognizer, "沪", probability).accept("沪A12345", [province_score, *others], CROP) is None, why


def test_without_the_crop_or_with_a_sure_province_the_old_rule_holds(recognizer):
    reader = reader_naming(recognizer, "苏", 0.99)
    assert reader.accept("沪A12345", [0.9, *SURE]) is None  # nothing to look at
    assert reader.accept("沪A12345", [0.96, *SURE], CROP) == 0.96  # over province_confidence: not asked


def test_the_cell_is_the_left_quarter_of_the_crop():
    crop = np.zeros((24, 96), np.uint8)
    crop[:, :24] = 255
    cell = province_cell(crop)
    assert cell.shape == (32, 32) and cell.min() == 255
    assert province_cell(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)).shape == (32, 32)


def test_the_shipped_classifier_names_rendered_provinces_of_a_held_out_seed(classifier):
    rng = np.random.default_rng(EVAL_SEED)
    crops = []
    for k, province in enumerate(PROVINCES):
        kind = KINDS[k % len(KINDS)]
        tail = (random_green_text(rng) if kind == "green" else random_text(rng))[1:]
        crops.append(localised_crop(rng, 160, kind, (192, 48), province + tail)[0])
    named = [p for p, _ in classifier.classify(crops)]
    right = sum(n == p for n, p in zip(named, PROVINCES, strict=True))
    assert right >= 30, list(zip(named, PROVINCES, strict=True))


@pytest.mark.skipif(not (BLUE_CROPS / "labels.csv").is_file(), reason="shared/data not present")
def test_the_shipped_classifier_names_held_out_real_provinces(classifier):
    _, held_out = split_crops(load_crops())
    named = classifier.classify([cv2.imread(str(path)) for path, _ in held_out])
    right = [n == text[0] for (_, text), (n, _) in zip(held_out, named, strict=True)]
    anhui = [r for (_, text), r in zip(held_out, right, strict=True) if text[0] == "皖"]
    others = [r for (_, text), r in zip(held_out, right, strict=True) if text[0] != "皖"]
    # The real typeface is learned almost only from 皖 (the card): other provinces are named far less often.
    assert sum(anhui) >= 0.97 * len(anhui) and len(others) == 15 and sum(others) >= 6, (sum(anhui), sum(others))


def test_the_settings_keys_are_bounded():
    assert PlateSettings(province_model_confidence=0.99).province_model_confidence == 0.99
    for bad in ({"province_model_confidence": 1.0}, {"province_agreed_confidence": -0.1}, {"province_model": 3}):
        with pytest.raises(ValidationError):
            PlateSettings(**bad)
    assert PlateSettings().province_model_path(ROOT) is None


def test_both_settings_files_ship_the_classifier(tmp_path):
    default = load_config(ROOT / "configs" / "default.yaml", tmp_path / "default")
    shipped = default.settings.plates.province_model_path(default.base_dir)
    assert shipped == CLASSIFIER
    shutil.copy(ROOT / "deploy" / "settings.yaml", tmp_path / "settings.yaml")
    shutil.copy(ROOT / "configs" / "example-points.yaml", tmp_path / "points.yaml")
    deploy = load_config(tmp_path / "settings.yaml", tmp_path / "data")
    plates = deploy.settings.plates
    assert plates.province_model_path(deploy.base_dir).name == CLASSIFIER.name
    paths = {"model", "province_model"}
    assert plates.model_dump(exclude=paths) == default.settings.plates.model_dump(exclude=paths)


def test_a_plate_reader_is_not_taken_for_a_province_classifier():
    with pytest.raises(ValueError, match="not a province classifier"):
        ProvinceClassifier(READER)
    with pytest.raises(FileNotFoundError):
        ProvinceClassifier(ROOT / "models" / "missing.onnx")


def test_the_runtime_reads_plates_with_the_shipped_check(tmp_path):
    from feixian.runtime import Runtime

    reader = Runtime(load_config(ROOT / "configs" / "default.yaml", tmp_path)).plate_reader
    assert reader is not None and reader.province_check is not None
    assert (reader.province_check.agreed_confidence, reader.province_check.classifier_confidence) == (0.5, 0.97)
    # Without the key the reader still runs, on province_confidence alone.
    settings = tmp_path / "settings.yaml"
    settings.write_text("extends: " + str(ROOT / "configs" / "default.yaml") + "\nplates:\n  province_model: null\n")
    assert Runtime(load_config(settings, tmp_path / "data")).plate_reader.province_check is None
