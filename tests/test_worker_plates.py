"""A truck passage through a point worker with the shipped plate reader: the case names the plate as its
party, and the plate as read is stored with the evidence and described in the manifest."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from cases.store import EvidenceSettings, LocalObjectStore
from feixian.config import PlateSettings
from feixian.domain import Category, Point, Source, Zone
from pipeline.evidence import EvidenceBuilder
from pipeline.frames import Frame, encode_jpeg
from pipeline.plates import PlateReader, PlateRecognizer
from pipeline.rules import VehicleRule
from pipeline.taxonomy import CLASSES
from pipeline.worker import PointWorker
from training.plates.render import render_plate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = PlateSettings()
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
POINT = Point(
    id="JD-EXIT-02",
    name="胜辛路工地出口",
    town="工业区",
    device_id="cam-0031",
    gps=(31.35, 121.22),
    source=Source(kind="push"),
    announced_on=date(2026, 1, 1),
    legal_review=True,
    technical_review=True,
    zones=[Zone(id="exit", kind="site_exit", polygon=[(0, 0), (640, 0), (640, 360), (0, 360)])],
    categories=[Category.VEHICLE],
)


def truck_frame(k: int, plate: str | None) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A truck front approaching the camera (growing), with its yellow plate when `plate` is given."""
    img = np.full((360, 640, 3), 110, np.uint8)
    w = 160 + 12 * k
    x1, y1 = 240 - 6 * k, 340 - int(w * 0.9)
    cv2.rectangle(img, (x1, y1), (x1 + w, 340), (40, 90, 30), -1)  # green cab
    if plate is not None:
        pw = int(w * 0.38)
        patch = cv2.resize(render_plate(plate, "yellow"), (pw, round(pw * 140 / 440)), interpolation=cv2.INTER_AREA)
        px, py = x1 + (w - pw) // 2, 340 - 20 - patch.shape[0]
        img[py : py + patch.shape[0], px : px + pw] = patch
    return img, (float(x1), float(y1), float(x1 + w), 340.0)


class ScriptedDetector:
    """Boxes the truck where `truck_frame` drew it (the detector is not under test here)."""

    def __init__(self, boxes: dict[int, tuple[float, float, float, float]]):
        self.boxes = boxes
        self.calls = 0

    def detect(self, image) -> sv.Detections:
        box = self.boxes[self.calls]
        self.calls += 1
        return sv.Detections(
            xyxy=np.array([box], dtype=np.float32),
            confidence=np.array([0.8], dtype=np.float32),
            class_id=np.array([CLASSES.index("truck_uncovered")]),
            data={"class_name": np.array(["truck_uncovered"])},
        )


class OneTrack:
    def update(self, detections: sv.Detections, at: datetime) -> sv.Detections:
        detections.tracker_id = np.ones(len(detections), dtype=int)
        return detections


def run_passage(tmp_path: Path, plate: str | None) -> list:
    frames, boxes = [], {}
    for k in range(12):
        img, boxes[k] = truck_frame(k, plate)
        frames.append(Frame(POINT.id, k, T0 + timedelta(seconds=k / 5), encode_jpeg(img)))
    filed = []
    worker = PointWorker(
        POINT,
        ScriptedDetector(boxes),
        OneTrack(),
        [VehicleRule(POINT, plate_views=4)],
        EvidenceBuilder(LocalObjectStore(tmp_path), {"name": "m", "version": "1", "sha256": "ab" * 32}, {}),
        lambda event, bundle: filed.append((event, bundle)),
        EvidenceSettings(pre_roll_s=1, post_roll_s=1),
        [Category.VEHICLE],
        PlateReader(
            PlateRecognizer(ROOT / "models" / "feixian-plate-v2.onnx"),
            SHIPPED.min_confidence,
            SHIPPED.province_confidence,
        ),
    )
    for f in frames:
        worker.process(f)
    worker.flush()
    return filed


def test_the_case_names_the_plate_and_keeps_it_as_evidence(tmp_path):
    ((event, bundle),) = run_passage(tmp_path, "沪D62819")
    assert event.plate == "沪D·62819"
    assert bundle.to_new_case(event, POINT).party == "沪D·62819"
    crop = cv2.imdecode(np.frombuffer((tmp_path / bundle.keys["plate"]).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None and crop.shape[1] > crop.shape[0]
    manifest = json.loads((tmp_path / bundle.manifest_key).read_bytes())
    assert manifest["party"] == {"plate": "沪D·62819"}
    assert "plate" in manifest["files"]
    read = manifest["rule"]["plate"]
    assert read["text"] == "沪D·62819" and read["views_read"] == 4 and read["views_agreeing"] >= 2
    assert read["colour"] == "yellow" and read["confidence"] >= 0.8


def test_a_truck_without_a_legible_plate_has_no_party(tmp_path):
    ((event, bundle),) = run_passage(tmp_path, None)
    assert event.plate is None and "plate" not in bundle.keys
    assert event.details["plate"] == {"text": None, "views_read": 4}
