"""PointTracker on scripted boxes: stable ids, new objects, misses, class changes, duplicate classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import supervision as sv

from pipeline.taxonomy import CLASSES
from pipeline.tracking import PointTracker, TrackerSettings

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FPS = 5.0


def dets(*rows: tuple[float, float, float, float, str, float]) -> sv.Detections:
    """Rows (x1, y1, x2, y2, class name, confidence)."""
    if not rows:
        empty = sv.Detections.empty()
        empty.data["class_name"] = np.array([], dtype=str)
        return empty
    return sv.Detections(
        xyxy=np.array([r[:4] for r in rows], dtype=np.float32),
        confidence=np.array([r[5] for r in rows], dtype=np.float32),
        class_id=np.array([CLASSES.index(r[4]) for r in rows]),
        data={"class_name": np.array([r[4] for r in rows])},
    )


def run(tracker: PointTracker, frames: list[sv.Detections], timed: bool = True) -> list[dict[str, int]]:
    """Track a scripted sequence at FPS (with capture times, or as a steady stream); per frame, class
    name -> tracker id."""
    out = []
    for k, d in enumerate(frames):
        t = tracker.update(d, T0 + timedelta(seconds=k / FPS) if timed else None)
        out.append(dict(zip(t.data["class_name"].tolist(), t.tracker_id.tolist(), strict=True)))
    return out


def truck(k: int, cls: str = "truck", conf: float = 0.8):
    return (20.0 + 6 * k, 60.0, 120.0 + 6 * k, 140.0, cls, conf)


def test_ids_are_stable_and_new_objects_get_new_ids():
    frames = [dets(truck(k)) for k in range(5)]
    frames += [dets(truck(k), (200.0, 10, 230, 60, "car", 0.7)) for k in range(5, 10)]
    ids = run(PointTracker(FPS), frames)
    assert ids[0] == {"truck": -1}  # ByteTrack names a track from its second sighting
    assert len({f["truck"] for f in ids[1:]}) == 1
    car_ids = {f["car"] for f in ids[6:]}
    assert len(car_ids) == 1 and car_ids.isdisjoint({ids[1]["truck"]}) and -1 not in car_ids


@pytest.mark.parametrize("timed", [True, False])
@pytest.mark.parametrize("missed", [2, 3])
def test_id_survives_a_short_miss(missed, timed):
    frames = [dets(truck(k)) for k in range(4)] + [dets()] * missed
    frames += [dets(truck(k)) for k in range(4 + missed, 8 + missed)]
    ids = run(PointTracker(FPS), frames, timed)
    assert {f["truck"] for f in ids if f} == {-1, ids[1]["truck"]} and ids[-1]["truck"] == ids[1]["truck"]


@pytest.mark.parametrize("timed", [True, False])
def test_id_is_dropped_after_the_lost_time(timed):
    frames = [dets(truck(k)) for k in range(3)] + [dets()] * 10 + [dets(truck(13)), dets(truck(14))]
    ids = run(PointTracker(FPS, TrackerSettings(lost_track_s=1.0)), frames, timed)
    assert ids[-1]["truck"] not in (-1, ids[1]["truck"])


def test_class_change_keeps_the_id():
    classes = ["truck", "truck", "truck_dirty", "truck", "truck_dirty", "truck_uncovered", "truck"]
    ids = run(PointTracker(FPS), [dets(truck(k, c)) for k, c in enumerate(classes)])
    assert len({next(iter(f.values())) for f in ids[1:]}) == 1


def test_one_object_under_two_classes_is_tracked_once():
    frames = [dets(truck(k, "truck", 0.6), truck(k, "truck_dirty", 0.7)) for k in range(6)]
    ids = run(PointTracker(FPS), frames)
    assert all(f.keys() == {"truck_dirty"} for f in ids)
    assert len({f["truck_dirty"] for f in ids[1:]}) == 1


def test_empty_frames_keep_the_columns_rules_read():
    out = PointTracker(FPS).update(dets(), T0)
    assert len(out) == 0 and out.tracker_id.shape == (0,) and out.data["class_name"].shape == (0,)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="frame_rate"):
        PointTracker(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        PointTracker(FPS).update(dets(truck(0)), datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        TrackerSettings(lost_track_s=0)


def test_a_long_gap_in_capture_time_ends_the_track():
    # A push camera that goes quiet for 5 s: with capture times the track expires, whatever the frame count.
    tracker = PointTracker(FPS)
    times = [0.0, 0.2, 0.4, 5.0, 5.2]
    ids = [tracker.update(dets(truck(0)), T0 + timedelta(seconds=s)).tracker_id[0] for s in times]
    assert ids[1] == ids[2] >= 0 and ids[4] not in (-1, ids[1])
