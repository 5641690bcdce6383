"""The motion gate (pipeline.motion): what counts as motion, when a standing item is looked at again, and how a
point worker carries the last detections over the frames it lets through undetected."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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


NOTHING = np.zeros((0, 4), np.float32)
STALL = np.array([[300, 200, 340, 266]], np.float32)


def test_a_repeated_frame_is_still_and_jpeg_noise_does_not_count() -> None:
    md = MotionDetector(MotionSettings())
    base = street()
    assert md.update(base) == [(0.0, 0.0, W, H)]  # nothing known yet: all of it is new
    rng = np.random.default_rng(1)
    for _ in range(10):
        noisy = np.clip(base.astype(np.int16) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
        assert md.update(noisy) == []


def test_the_smallest_target_moving_counts_and_a_speck_does_not() -> None:
    md = MotionDetector(MotionSettings())
    base = street()
    md.update(base)
    md.update(base)
    assert md.update(with_box(base, 2, 2, w=3, h=3)) == []  # a few pixels: below min_area
    (moved,) = md.update(with_box(base, 300, 200))  # 40x66 px, DESIGN's minimum target
    # Where it moved, in frame pixels, to within the thumbnail's cell (3.6 px) and the blur and dilation.
    assert np.allclose(moved, (300, 200, 340, 266), atol=12), moved


def test_two_movers_are_two_regions() -> None:
    md = MotionDetector(MotionSettings())
    base = street()
    md.update(base)
    moved = md.update(with_box(with_box(base, 40, 40), 500, 250))
    assert np.allclose(sorted(b[0] for b in moved), [40, 500], atol=12), moved


def test_an_item_put_down_shows_as_motion_for_a_few_frames_then_settles() -> None:
    md = MotionDetector(MotionSettings(background_alpha=0.1))
    base = street()
    md.update(base)
    placed = with_box(base, 300, 200)
    answers = [bool(md.update(placed)) for _ in range(40)]
    assert answers[:5] == [True] * 5, "the detector must see it settle, not only arrive"
    assert answers[-10:] == [False] * 10, "a standing item is no motion once the background took it"


def test_a_frame_of_another_size_restarts_the_background() -> None:
    md = MotionDetector(MotionSettings())
    md.update(street())
    md.update(street())
    assert md.update(street()[:, : W // 2]) == [(0.0, 0.0, W // 2, H)]  # a 4:3 stream after a 16:9 one


def looks(gate: MotionGate, images, ks, found) -> list[int]:
    """The frames among `ks` the gate sends to the detector, whole or in part."""
    return [k for k, image in zip(ks, images, strict=True) if gate.plan(image, at(k), found) is not None]


def test_the_whole_view_every_whole_s_and_followed_items_every_recheck_s() -> None:
    gate = MotionGate(MotionSettings(recheck_s=2.0, whole_s=10.0))
    base = street()
    assert gate.plan(base, at(0), NOTHING).is_whole
    # 20 s of still frames with nothing followed: one whole look every 10 s (50 frames at 5 fps), nothing between.
    assert looks(gate, [base] * 99, range(1, 100), NOTHING) == [50]
    # With an item followed: a whole look when due, and the item's region every recheck_s (10 frames) between.
    plans = {k: gate.plan(base, at(k), STALL) for k in range(100, 131)}
    assert [k for k, p in plans.items() if p is not None] == [100, 110, 120, 130]
    assert plans[100].is_whole
    for k in (110, 120, 130):
        assert not plans[k].is_whole and plans[k].carried(STALL).tolist() == [False], k


def test_most_of_the_view_moving_is_looked_at_whole_and_restarts_both_clocks() -> None:
    gate = MotionGate(MotionSettings(recheck_s=2.0, whole_s=10.0, max_region_share=0.5))
    base = street()
    gate.plan(base, at(0), STALL)
    walker = with_box(base, 560, 40, w=30, h=60)
    plan = gate.plan(walker, at(5), STALL)
    assert not plan.is_whole and plan.carried(STALL).tolist() == [True]  # the walker alone, the stall carried
    everywhere = np.full_like(base, 250)
    assert gate.plan(everywhere, at(8), STALL).is_whole  # most of the view moved: one whole look
    settled = next(k for k in range(9, 60) if gate.plan(everywhere, at(k), STALL) is None)
    # The stall's region is due 2 s after the last whole look, the whole view 10 s after it.
    due = looks(gate, [everywhere] * 80, range(settled + 1, settled + 81), STALL)
    last_whole = settled - 1
    assert due[:2] == [last_whole + 10, last_whole + 20] and last_whole + 50 in due


def test_a_region_grows_over_an_item_a_passer_by_touches() -> None:
    gate = MotionGate(MotionSettings(region_margin_px=8))
    base = street()
    gate.plan(base, at(0), STALL)
    passer = with_box(base, 330, 240, w=30, h=60)  # walks in front of the stall's lower right
    (rect,) = gate.plan(passer, at(1), STALL).rects
    x1, y1, x2, y2 = STALL[0]
    assert rect[0] <= x1 and rect[1] <= y1 and rect[2] >= x2 and rect[3] >= y2, "the stall is looked at whole"


def test_an_item_the_detector_missed_is_looked_at_again_on_every_frame_for_relook_s() -> None:
    """A weak item flickers: after one miss, its place is looked at on the following frames though nothing
    moves there, until it is found again or relook_s has passed."""
    gate = MotionGate(MotionSettings(recheck_s=60.0, relook_s=1.0))
    base = street()
    gate.plan(base, at(0), NOTHING)
    gate.plan(base, at(1), STALL)  # found at frame 0
    missed = [gate.plan(base, at(k), NOTHING) for k in range(2, 10)]  # not found since
    assert all(p is not None and not p.is_whole for p in missed[:4]) and missed[5:] == [None] * 3
    assert all(p.carried(STALL).tolist() == [False] for p in missed[:4])


def test_a_box_the_frame_border_cuts_is_looked_at_again_on_every_frame() -> None:
    """Something half out of view may leave with too little of it moving to count as motion: its box is never
    carried over, while an item inside the view with nothing moving near it is."""
    leaving = np.array([[0, 120, 11, 187]], np.float32)  # a person's last sliver at the left border
    for box in (leaving, np.array([[600, 300, 640, 360]], np.float32)):
        gate = MotionGate(MotionSettings(recheck_s=60.0, whole_s=600.0))
        base = street()
        assert gate.plan(base, at(0), NOTHING).is_whole
        plans = [gate.plan(base, at(k), box) for k in range(1, 10)]
        assert all(p is not None and not p.is_whole and p.carried(box).tolist() == [False] for p in plans)
    gate = MotionGate(MotionSettings(recheck_s=60.0, whole_s=600.0))
    gate.plan(street(), at(0), NOTHING)
    assert [gate.plan(street(), at(k), STALL) for k in range(1, 10)] == [None] * 9


def test_regions_off_sends_the_whole_frame_on_any_motion() -> None:
    gate = MotionGate(MotionSettings(regions=False))
    base = street()
    gate.plan(base, at(0), STALL)
    assert gate.plan(with_box(base, 560, 40, w=30, h=60), at(1), STALL).is_whole


def test_with_look_s_the_gate_is_asked_at_most_that_often_and_the_frames_between_are_carried() -> None:
    gate = MotionGate(MotionSettings(look_s=1.0))
    base = street()
    assert gate.plan(base, at(0), STALL).is_whole
    walker = with_box(base, 560, 40, w=30, h=60)
    # Motion at 0.2-0.8 s waits for the next ask; the background still learns those frames.
    assert all(gate.plan(walker, at(k), STALL) is None for k in range(1, 5))
    assert gate.plan(with_box(base, 500, 40, w=30, h=60), at(5), STALL).rects  # 1.0 s: asked, motion seen
    assert gate.plan(base, at(6), STALL) is None
    # A camera clock set back makes the gate due at once, not silent until the clock catches up.
    assert gate.plan(with_box(base, 100, 40, w=30, h=60), at(2), STALL).rects


def test_look_s_0_asks_the_gate_on_every_frame() -> None:
    gate = MotionGate(MotionSettings())
    base = street()
    gate.plan(base, at(0), STALL)
    assert gate.plan(with_box(base, 560, 40, w=30, h=60), at(1), STALL).rects


@pytest.mark.parametrize(
    "field, value",
    [
        ("look_s", -0.5),
        ("look_s", 61),
        ("height", 8),
        ("threshold", 0),
        ("threshold", 255),
        ("min_area", 0),
        ("background_alpha", 0),
        ("recheck_s", 0),
        ("relook_s", -1),
        ("region_margin_px", -1),
        ("max_region_share", 0),
    ],
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

    def detect_regions(self, image: np.ndarray, rects) -> sv.Detections:
        """Sees only inside the regions, as OnnxDetector.detect_regions does."""
        seen = np.zeros_like(image)
        for x1, y1, x2, y2 in rects:
            seen[y1:y2, x1:x2] = image[y1:y2, x1:x2]
        return self.detect(seen)

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
        self.boxes: list[np.ndarray] = []

    def update(self, frame: Frame, detections: sv.Detections) -> list:
        self.seen.append(len(detections))
        self.boxes.append(detections.xyxy.copy())
        return []

    def flush(self, at: datetime) -> list:
        return []


def run_worker(
    images: list[np.ndarray], gate: MotionGate | None, rule: Recorder | None = None
) -> tuple[PointWorker, StallDetector, list[int]]:
    detector, rule = StallDetector(), rule or Recorder()
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


def test_a_passer_by_elsewhere_is_looked_at_alone_while_the_stall_is_carried() -> None:
    base = street()
    stall = with_box(base, 300, 200)
    # A passer-by (too dim for the stand-in detector to name) crosses the top of the view, 8 px a frame.
    images = [stall] * 10 + [with_box(stall, 20 + 8 * k, 20, w=24, h=50, colour=170) for k in range(60)]
    worker, detector, seen = run_worker(images, MotionGate(MotionSettings(recheck_s=60.0)))
    assert seen == [1] * 70, "the stall reaches the rules in every frame"
    assert worker.stats.regions >= 55, "the passer-by's frames were looked at in regions only"
    assert worker.stats.frames == 70


def test_a_passer_by_crossing_the_stall_has_it_looked_at_again_whole() -> None:
    base = street()
    stall = with_box(base, 300, 200)
    # The passer-by walks along the stall's top edge, covering a strip of it.
    images = [stall] * 10 + [with_box(stall, 250 + 4 * k, 190, w=24, h=20, colour=170) for k in range(30)]
    rule = Recorder()
    worker, _, seen = run_worker(images, MotionGate(MotionSettings(recheck_s=60.0)), rule)
    assert seen == [1] * 40
    assert all(b.tolist() == [[300, 200, 340, 266]] for b in rule.boxes), "never a stall cut by a region's edge"
    assert worker.stats.regions >= 25


class LeavingDetector:
    """Finds one person box in its first `shown` calls and nothing after, whatever the frame shows: someone who
    walked out of view where the motion gate saw nothing move."""

    def __init__(self, box: list[float], shown: int) -> None:
        self.box, self.shown, self.calls = np.array([box], np.float32), shown, 0

    def detect_regions(self, image: np.ndarray, rects) -> sv.Detections:
        found = self.detect(image)
        centre = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
        inside = [any(x1 <= cx < x2 and y1 <= cy < y2 for x1, y1, x2, y2 in rects) for cx, cy in centre]
        return found[np.array(inside, dtype=bool)]

    def detect(self, image: np.ndarray) -> sv.Detections:
        self.calls += 1
        n = 1 if self.calls <= self.shown else 0
        return sv.Detections(
            xyxy=self.box[:n],
            confidence=np.full(n, 0.7),
            class_id=np.zeros(n, dtype=int),
            data={"class_name": np.array(["person"] * n)},
        )


def test_a_person_gone_at_the_border_is_gone_for_the_rules_as_when_detecting_every_frame() -> None:
    images = [street()] * 20
    seen = {}
    for gated in (False, True):
        rule = Recorder()
        worker = PointWorker(
            POINT,
            LeavingDetector([0, 120, 11, 187], shown=3),
            PassThrough(),
            [rule],
            None,
            lambda e, b: None,
            EvidenceSettings(),
            [],
            gate=MotionGate(MotionSettings(recheck_s=60.0)) if gated else None,
        )
        for k, image in enumerate(images):
            worker.process(Frame("P1", k, at(k), encode_jpeg(image, quality=95)))
        seen[gated] = rule.seen
    assert seen[False] == [1] * 3 + [0] * 17
    assert seen[True] == seen[False], "no carried ghost at the border"
