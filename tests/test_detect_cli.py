"""`feixian detect`: JSON lines of what the shipped settings see in images and video, and bad inputs reported by
name while the others are still processed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
import yaml

from feixian.cli import main
from feixian.detect import category_of, describe
from pipeline.taxonomy import CLASSES, OCCUPATION_CLASSES
from training.synth.dataset import generate_image

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "configs" / "default.yaml"
KEYS = {"class", "category", "subtype", "confidence", "box", "plate"}


@pytest.fixture(scope="module")
def street(tmp_path_factory) -> dict[str, Path]:
    """Two generated street scenes as JPEGs, and a 7-frame video of scenes (MJPG in AVI)."""
    root = tmp_path_factory.mktemp("inputs")
    scenes = [generate_image(41, k, (480, 360))[0] for k in range(3)]
    paths = {"a": root / "a.jpg", "b": root / "b.png"}
    cv2.imwrite(str(paths["a"]), scenes[0])
    cv2.imwrite(str(paths["b"]), scenes[1])
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (480, 360))
    for k in range(7):
        writer.write(scenes[k % 3])
    writer.release()
    paths["video"] = video
    return paths


def detect(capsys, *argv: str) -> tuple[int, list[dict], str]:
    rc = main(["detect", *argv])
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def settings_with(tmp_path: Path, **model) -> Path:
    """configs/default.yaml with some `model` keys changed."""
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"extends": str(DEFAULT), "model": model}))
    return path


def test_one_line_per_image_with_the_documented_schema(street, tmp_path, capsys):
    rc, lines, err = detect(capsys, str(street["a"]), str(street["b"]), "--data-dir", str(tmp_path))
    assert rc == 0 and err == ""
    assert [(r["source"], r["frame"]) for r in lines] == [(str(street["a"]), None), (str(street["b"]), None)]
    conf = yaml.safe_load(DEFAULT.read_text())["model"]["conf_threshold"]
    found = [d for r in lines for d in r["detections"]]
    assert found, "the shipped model finds something in a generated street"
    for d in found:
        assert set(d) == KEYS and d["class"] in CLASSES
        assert (d["category"], d["subtype"]) == category_of(d["class"])
        assert d["confidence"] > conf  # the deployed conf_threshold, not the lower track_threshold
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 480 and 0 <= y1 < y2 <= 360
        assert d["plate"] is None or (d["category"] == "vehicle" and set(d["plate"]) == {"text", "confidence"})


def test_boxes_under_the_settings_conf_threshold_are_left_out(street, tmp_path, capsys):
    # Without the item check, which re-scores the item boxes the detector kept: a box under the threshold never
    # reaches it, one over it may leave the check stronger, so scores would not order the two runs' boxes.
    def settings(conf: float) -> str:
        return str(settings_with(tmp_path, conf_threshold=conf, item_check=None))

    _, low, _ = detect(capsys, str(street["a"]), "--config", settings(0.2))
    scores = sorted(d["confidence"] for d in low[0]["detections"])
    cut = (scores[0] + scores[1]) / 2  # between the two weakest boxes
    _, high, _ = detect(capsys, str(street["a"]), "--config", settings(cut))
    # NMS only lets a box suppress weaker ones, so a higher threshold keeps exactly the stronger boxes.
    assert high[0]["detections"] == [d for d in low[0]["detections"] if d["confidence"] > cut]
    assert len(high[0]["detections"]) == len(scores) - 1


def test_video_every_nth_frame_and_folders_expand_sorted(street, tmp_path, capsys):
    rc, lines, _ = detect(capsys, str(street["video"]), "--every", "3", "--data-dir", str(tmp_path))
    assert rc == 0
    assert [(r["source"], r["frame"]) for r in lines] == [(str(street["video"]), k) for k in (0, 3, 6)]
    # Frame 3 shows scene 0 again (through MJPG, so scores near the threshold move): each object found surely
    # in frame 0 is found again in frame 3, where it was.
    sure = [d for d in lines[0]["detections"] if d["confidence"] >= 0.5]
    assert sure
    for d in sure:
        again = [e for e in lines[1]["detections"] if e["class"] == d["class"]]
        assert again and sv.box_iou_batch(np.array([d["box"]]), np.array([e["box"] for e in again])).max() > 0.7, d
    rc, lines, _ = detect(capsys, str(street["a"].parent), "--every", "5", "--data-dir", str(tmp_path))
    assert [(Path(r["source"]).name, r["frame"]) for r in lines] == [("a.jpg", None), ("b.png", None)] + [
        ("clip.avi", 0),
        ("clip.avi", 5),
    ]


def test_annotate_writes_a_copy_per_image_and_sampled_frame(street, tmp_path, capsys):
    out = tmp_path / "ann"
    rc, lines, _ = detect(capsys, str(street["a"]), str(street["video"]), "--every", "4", "--annotate", str(out))
    assert rc == 0 and len(lines) == 3
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "clip_000000.jpg", "clip_000004.jpg"]
    drawn, original = cv2.imread(str(out / "a.jpg")), cv2.imread(str(street["a"]))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 100  # boxes drawn


def test_bad_inputs_are_named_and_the_others_still_processed(street, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    data = street["a"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing.jpg"
    argv = [str(missing), str(notes), str(truncated), str(street["a"]), "--data-dir", str(tmp_path)]
    rc, lines, err = detect(capsys, *argv)
    assert rc == 2
    assert [r["source"] for r in lines] == [str(street["a"])]
    for bad in (missing, notes, truncated):
        assert f"feixian detect: {bad}:" in err
    assert len(err.strip().splitlines()) >= 3


class _Read:
    text, confidence = "沪A·12345", 0.9312


class _Reader:
    def __init__(self):
        self.boxes: list[list[float]] = []

    def read_image(self, bgr, box):
        self.boxes.append(box)
        return _Read()


def test_plates_are_read_for_trucks_only():
    import supervision as sv

    dets = sv.Detections(
        xyxy=np.array([[0, 0, 10, 10], [5, 5, 30, 20], [1, 1, 4, 4]], np.float32),
        confidence=np.array([0.9, 0.5, 0.3], np.float32),
        class_id=np.array([3, 1, 7]),
        data={"class_name": np.array(["truck_dirty", "car", "goods"])},
    )
    reader = _Reader()
    records = describe(np.zeros((32, 32, 3), np.uint8), dets, reader)
    assert reader.boxes == [[0.0, 0.0, 10.0, 10.0]]
    assert [r["plate"] for r in records] == [{"text": "沪A·12345", "confidence": 0.9312}, None, None]
    assert [(r["category"], r["subtype"]) for r in records] == [
        ("vehicle", "dirty"),
        (None, None),
        ("occupation", "goods"),
    ]
    assert describe(np.zeros((32, 32, 3), np.uint8), dets, None)[0]["plate"] is None


def test_every_class_maps_to_its_category_and_subtype():
    table = {c: category_of(c) for c in CLASSES}
    assert table["truck"] == ("vehicle", None)
    assert table["truck_uncovered"] == ("vehicle", "uncovered")
    assert table["person"] == table["car"] == (None, None)
    assert {c: s for c, (cat, s) in table.items() if cat == "occupation"} == OCCUPATION_CLASSES
