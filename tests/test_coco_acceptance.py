"""Acceptance on real footage with the COCO detector from ../shared, mapped onto feixian classes.

Run with `-s` to see the figures. The COCO model saw the COCO image in training, so (b) checks class
mapping, zones and the occupation rule on a real scene, not detection accuracy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import COCO_IMAGES, need

from feixian.domain import Point, Source, Zone
from ingest.sources import FileSource
from pipeline.detector import OnnxDetector
from pipeline.frames import Frame, encode_jpeg
from pipeline.rules import OccupationRule
from pipeline.taxonomy import COCO_CLASS_MAP, occupation_subtype
from pipeline.tracking import PointTracker
from pipeline.zones import ZoneTester

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def detector(coco_model) -> OnnxDetector:
    return OnnxDetector(coco_model, class_map=COCO_CLASS_MAP)


def class_votes(frames: Iterable[Frame], detector: OnnxDetector, tracker: PointTracker) -> dict[int, Counter]:
    """Per confirmed track id, how often it was seen under each class."""
    votes: dict[int, Counter] = defaultdict(Counter)
    for frame in frames:
        tracked = tracker.update(detector.detect(frame.image()), frame.captured_at)
        for tid, name in zip(tracked.tracker_id, tracked.data["class_name"], strict=True):
            if tid >= 0:
                votes[int(tid)][str(name)] += 1
    return votes


def test_highway_cars_and_trucks_are_tracked(highway_video, detector):
    source = FileSource("HIGHWAY", highway_video, detect_fps=5, start_time=T0)
    votes = class_votes(source.frames(), detector, PointTracker(frame_rate=5))
    per_class = Counter(v.most_common(1)[0][0] for v in votes.values())
    frames_per_track = [sum(v.values()) for v in votes.values()]
    print(
        f"\nhighway: {len(votes)} tracks by majority class {dict(per_class)}; "
        f"frames per track median {np.median(frames_per_track):.0f}, max {max(frames_per_track)}"
    )
    assert per_class["car"] >= 5
    assert per_class["truck"] >= 1
    # Tracks link detections over time: a car crossing the view at 5 fps is one id for many frames.
    assert np.median(frames_per_track) >= 5


COCO_CAFE = COCO_IMAGES / "000000000127.jpg"
# The paving of the outdoor cafe, 640x481: from the far picnic benches (y ~ 90) to the frame's bottom edge
# (y = 481, where a box cut off by the frame ends), leaving out the bushes at the top right.
PAVEMENT = Zone(
    id="pavement",
    kind="no_occupation",
    polygon=[(0, 110), (240, 88), (520, 95), (640, 160), (640, 481), (0, 481)],
)
BUSHES = Zone(id="bushes", kind="no_occupation", polygon=[(520, 0), (640, 0), (640, 150), (520, 150)])
COCO_OCCUPATION_IDS = {13: "bench", 56: "chair", 60: "dining table", 25: "umbrella"}


def labelled_boxes(label_file: Path, width: int, height: int) -> tuple[list[str], np.ndarray]:
    """COCO names and xyxy pixel boxes of the occupation items in a YOLO label file."""
    rows = [r for r in np.loadtxt(label_file, ndmin=2) if int(r[0]) in COCO_OCCUPATION_IDS]
    names = [COCO_OCCUPATION_IDS[int(r[0])] for r in rows]
    cxcywh = np.array([r[1:] for r in rows]) * [width, height, width, height]
    return names, np.hstack([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2])


@pytest.fixture(scope="module")
def cafe() -> np.ndarray:
    return cv2.imread(str(need(COCO_CAFE)))


def test_pavement_zone_holds_the_labelled_furniture(cafe):
    names, boxes = labelled_boxes(need(COCO_CAFE.with_suffix(".txt")), cafe.shape[1], cafe.shape[0])
    inside = ZoneTester(PAVEMENT).contains(boxes)
    print(
        f"\ncafe labels in zone {PAVEMENT.id}: {Counter(n for n, i in zip(names, inside, strict=True) if i)}, "
        f"outside: {Counter(n for n, i in zip(names, inside, strict=True) if not i)}"
    )
    # Every bench and table stands on the paving; umbrella canopies float above it (two of three end
    # higher up the frame than the paving begins).
    assert all(i for n, i in zip(names, inside, strict=True) if n in ("bench", "dining table"))
    assert Counter(names)["bench"] == 4 and Counter(names)["dining table"] == 2
    assert not ZoneTester(BUSHES).contains(boxes).any()


def test_cafe_furniture_stands_in_the_pavement_zone(cafe, detector):
    dets = detector.detect(cafe)
    names = dets.data["class_name"]
    items = np.array([occupation_subtype(n) is not None for n in names], bool)
    inside = ZoneTester(PAVEMENT).contains(dets.xyxy) & items
    found = [
        (str(n), round(float(c), 2), [round(float(v)) for v in b])
        for n, c, b, keep in zip(names, dets.confidence, dets.xyxy, inside, strict=True)
        if keep
    ]
    print(f"\ncafe: occupation items in zone {PAVEMENT.id}: {found}; all detections: {sorted(set(names.tolist()))}")
    assert {"table", "chair", "umbrella"} & {n for n, _, _ in found}
    assert not (ZoneTester(BUSHES).contains(dets.xyxy) & items).any()


def test_cafe_furniture_left_out_raises_a_shopfront_event(cafe, detector):
    point = Point(
        id="CAFE-1",
        name="cafe",
        town="t",
        device_id="d",
        gps=(31.0, 121.0),
        source=Source(kind="push"),
        zones=[PAVEMENT, BUSHES],
        dwell_seconds=5,
    )
    rule, tracker = OccupationRule(point), PointTracker(frame_rate=1)
    jpeg = encode_jpeg(cafe)
    events = []
    for s in range(9):  # the same still every second: the furniture has not moved
        frame = Frame(point.id, s, T0 + timedelta(seconds=s), jpeg)
        events += rule.update(frame, tracker.update(detector.detect(frame.image()), frame.captured_at))
    for e in events:
        print(
            f"\ncafe event: {e.category.value}/{e.subtype} in {e.zone_id}, dwell {e.details['dwell_s']} s, "
            f"items {[o.class_name for o in e.objects]}"
        )
    assert [(e.subtype, e.zone_id) for e in events] == [("shopfront", "pavement")]
    event = events[0]
    assert event.started_at == T0
    assert event.triggered_at == T0 + timedelta(seconds=5)
    assert {o.class_name for o in event.objects} <= {"table", "chair", "umbrella"}
    assert [k.label for k in event.keyframes] == ["first_seen", "after_dwell"]
