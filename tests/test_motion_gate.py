"""The motion gate (pipeline.motion): what counts as motion, when a standing item is looked at again, and how a
point worker carries the last detections over the frames it lets through undetected."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest
import supervision as sv
from pydantic import ValidationError
from worker_stand_ins import push_point

from cases.store import EvidenceSettings
from feixian.config import Settings
from pipeline.frames import Frame, encode_jpeg
from pipeline.motion import MotionDetector, MotionGate, MotionSettings
from pipeline.worker import PointWorker

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
H, W = 360, 640


def street(seed: int = 0) -> np.ndarray:
    """A textured still street, so that blur and scaling have something to smear."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(110, 25, (H, W, 3)), 0, 255).astype(np.uint8)


def with_box(image: np.ndarray, x: int, y: int, w: int = 40, h: int = 66, colour: int = 230) -> np.ndarray:
    out = image.copy()
    out[y : y + h, x : x + w] = colour
    return out


def at(k: int, fps: float = 5.0) -> datetime:
    return T0 + timedelta(seconds=k / fps)


def test_a_repeated_frame_is_still_and_jpeg_noise_does_not_count() -> None:
    md = MotionDetector(MotionSettings())
    base = street()
    assert md.update(base) is True  # nothing known yet
    rng = np.random.default_rng(1)
    for _ in range(10):
        noisy = np.clip(base.astype(np.int16) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
        assert md.update(noisy) is False


def test_the_smallest_target_moving_counts_and_a_speck_does_not() -> None:
    md = MotionDetector(MotionSettings())
    base = street()
    md.update(base)
    md.update(base)
    assert md.update(with_box(base, 2, 2, w=3, h=3)) is False  # a few pixels: below min_area
    assert md.update(with_box(base, 300, 200)) is True  # 40x66 px, DESIGN's minimum target


def test_an_item_put_down_shows_as_motion_for_a_few_frames_then_settles() -> None:
    md = MotionDetector(MotionSettings(background_alpha=0.1))
    base = street()
    md.update(base)
    placed = with_box(base, 300, 200)
    answers = [md.update(placed) for _ in range(40)]
    assert answers[:5] == [True] * 5, "the detector must see it settle, not only arrive"
    assert answers[-10:] == [False] * 10, "a standing item is no motion once the background took it"


def test_a_frame_of_another_size_restarts_the_background() -> None:
    md = MotionDetector(MotionSettings())
    md.update(street())
    md.update(street())
    assert md.update(street()[:, : W // 2]) is True  # a 4:3 stream after a 16:9 one


def test_the_gate_rechecks_only_while_items_are_followed() -> None:
    gate = MotionGate(MotionSettings(recheck_s=2.0))
    base = street()
    assert gate.should_detect(base, at(0), tracking=False)
    # 20 s of still frames with nothing followed: the detector is never asked again.
    assert not any(gate.should_detect(base, at(k), tracking=False) for k in range(1, 100))
    # With an item followed: one look every recheck_s (10 frames at 5 fps), none between.
    answers = [gate.should_detect(base, at(k), tracking=True) for k in range(100, 131)]
    assert [k for k, a in zip(range(100, 131), answers, strict=True) if a] == [100, 110, 120, 130]


def test_motion_resets_the_recheck_clock() -> None:
    gate = MotionGate(MotionSettings(recheck_s=2.0))
    base, moved = street(), with_box(street(), 100, 100)
    gate.should_detect(base, at(0), tracking=True)
    looks = [k for k in range(5, 80) if gate.should_detect(moved, at(k), tracking=True)]
    # Detected while the item arrives and settles (motion), then every 2 s counted from the last of those.
    gaps = [b - a for a, b in pairwise(looks)]
    settled = next(i for i, gap in enumerate(gaps) if gap > 1)
    assert looks[: settled + 1] == list(range(5, looks[settled] + 1))
    assert gaps[settled:] == [10] * len(gaps[settled:])


@pytest.mark.parametrize(
    "field, value",
    [("height", 8), ("threshold", 0), ("threshold", 255), ("min_area", 0), ("background_alpha", 0), ("recheck_s", 0)],
)
def test_settings_out_of_bounds_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        MotionSettings.model_validate({field: value})


def test_the_settings_file_has_a_motion_section() -> None:
    s = Settings.model_validate({"model": {"path": "m.onnx"}, "motion": {"enabled": False, "recheck_s": 5}})
    assert (s.motion.enabled, s.motion.recheck_s) == (False, 5.0)
    with pytest.raises(ValidationError, match="motion.nonsense"):
        Settings.model_validate({"model": {"path": "m.onnx"}, "motion": {"nonsense": 1}})


POINT = push_point("P1").model_copy(update={"announced_on": date(2025, 1, 1), "detect_fps": 5})


class StallDetector:
    """Finds one stall wherever the frame's bright 40x66 block is (none when there is none)."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> sv.Detections:
        self.calls += 1
        ys, xs = np.nonzero(image[..., 0] >= 230)
        if not len(xs):
            empty = sv.Detections.empty()
            empty.data["class_name"] = np.array([], dtype=str)
            return empty
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return sv.Detections(
            xyxy=box, confidence=np.array([0.9]), class_id=np.array([0]), data={"class_name": np.array(["stall"])}
        )


class PassThrough:
    def update(self, detections: sv.Detections, at: datetime) -> sv.Detections:
        return detections


class Recorder:
    """A rule that notes, per frame, the boxes it was given."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def update(self, frame: Frame, detections: sv.Detections) -> list:
        self.seen.append(len(detections))
        return []

    def flush(self, at: datetime) -> list:
        return []


def run_worker(images: list[np.ndarray], gate: MotionGate | None) -> tuple[PointWorker, StallDetector, list[int]]:
    detector, rule = StallDetector(), Recorder()
    worker = PointWorker(
        POINT, detector, PassThrough(), [rule], None, lambda e, b: None, EvidenceSettings(), [], gate=gate
    )
    for k, image in enumerate(images):
        worker.process(Frame("P1", k, at(k), encode_jpeg(image, quality=95)))
    return worker, detector, rule.seen


def test_a_standing_stall_reaches_the_rules_every_frame_while_the_detector_rests() -> None:
    base = street()
    stall = with_box(base, 300, 200)
    images = [base] * 10 + [stall] * 150  # 2 s of empty street, then a stall standing for 30 s
    ungated, every, seen_every = run_worker(images, None)
    gated, rested, seen_gated = run_worker(images, MotionGate(MotionSettings(recheck_s=2.0)))
    assert seen_gated == seen_every, "the rules see the same boxes in every frame, gated or not"
    assert sum(seen_gated) == 150
    assert every.calls == ungated.stats.frames == 160
    # The first frame, the stall arriving and settling into the background (under 20 frames at alpha 0.1),
    # then one look every 2 s (10 frames): about a fifth of the frames.
    assert rested.calls <= 1 + 20 + 150 // 10
    assert gated.stats.frames == 160 and gated.stats.gated == 160 - rested.calls


def test_a_stall_taken_away_is_seen_gone_at_once() -> None:
    base = street()
    stall = with_box(base, 300, 200)
    images = [stall] * 50 + [base] * 20
    _, _, seen = run_worker(images, MotionGate(MotionSettings(recheck_s=60.0)))
    assert seen[:50] == [1] * 50 and seen[50:] == [0] * 20
