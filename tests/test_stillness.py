"""StillnessMap on painted frames: when a box's look changed, through passers-by, noise and late changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipeline.stillness import StillnessMap

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PAVEMENT = (128, 128, 128)
BOX = (100, 60, 140, 100)  # x1 y1 x2 y2, frame pixels


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def frame(*rects: tuple[tuple[int, int, int, int], tuple[int, int, int]], size=(240, 320)) -> np.ndarray:
    image = np.empty((*size, 3), np.uint8)
    image[:] = PAVEMENT
    for (x1, y1, x2, y2), colour in rects:
        image[y1:y2, x1:x2] = colour
    return image


CRATE = (BOX, (200, 60, 20))
PASSER_BY = ((90, 40, 150, 110), (30, 30, 160))


def play(still: StillnessMap, script, seconds: int, fps: float = 1.0) -> None:
    for k in range(int(seconds * fps)):
        still.update(script(k / fps), at(k / fps))


def test_a_put_down_item_is_dated_from_the_frame_it_first_showed_in():
    still = StillnessMap(settle_s=3.0)
    play(still, lambda s: frame(CRATE) if s >= 10 else frame(), 30)
    assert still.changed_since(BOX, after=at(0)) == at(10)


def test_a_change_that_has_not_held_for_settle_s_counts_as_now():
    still = StillnessMap(settle_s=3.0)
    play(still, lambda s: frame(CRATE) if s >= 10 else frame(), 12)  # shown at 10 and 11 s
    assert still.changed_since(BOX, after=at(0)) == at(11)


def test_a_passer_by_crossing_the_item_does_not_change_its_look():
    still = StillnessMap(settle_s=3.0)
    play(still, lambda s: frame(CRATE, PASSER_BY) if 20 <= s < 22 else frame(CRATE) if s >= 10 else frame(), 40)
    assert still.changed_since(BOX, after=at(0)) == at(10)


def lingering(s: float) -> np.ndarray:
    """The crate from 10 s; a passer-by stands in front of it 20-30 s, another 32-40 s."""
    other = ((90, 40, 150, 110), (160, 30, 30))
    return frame(CRATE, PASSER_BY) if 20 <= s < 30 else frame(CRATE, other) if 32 <= s < 40 else frame(CRATE)


@pytest.mark.parametrize(("memory", "since"), [(4, 10), (1, 40), (0, 40)])
def test_a_look_a_cell_returns_to_keeps_its_time_while_remembered(memory: int, since: int):
    # With one look remembered, the second passer-by pushes the crate's out of memory.
    still = StillnessMap(settle_s=3.0, memory=memory)
    play(still, lambda s: lingering(s) if s >= 10 else frame(), 50)
    assert still.changed_since(BOX, after=at(0)) == at(since)


def test_what_shows_again_when_an_item_is_taken_away_is_no_change():
    still = StillnessMap(settle_s=3.0)
    play(still, lambda s: frame(CRATE) if 10 <= s < 30 else frame(), 40)
    assert still.changed_since(BOX, after=at(0)) is None
    assert still.changed_since(BOX, after=at(-1)) == at(0)


def test_noise_below_tolerance_is_no_change():
    rng = np.random.default_rng(0)
    still = StillnessMap(tolerance=24, settle_s=1.0)

    def noisy(s: float) -> np.ndarray:
        image = frame(CRATE).astype(np.int16) + rng.integers(-10, 11, size=(240, 320, 3))
        return np.clip(image, 0, 255).astype(np.uint8)

    play(still, noisy, 20)
    assert still.changed_since(BOX, after=at(-1)) == at(0)  # as it first looked, never changed
    assert still.changed_since(BOX, after=at(0)) is None


def test_a_box_mostly_unchanged_since_after_is_none():
    still = StillnessMap(settle_s=1.0)
    small = ((100, 60, 110, 100), (200, 60, 20))  # a quarter of BOX
    play(still, lambda s: frame(small) if s >= 10 else frame(), 20)
    assert still.changed_since(BOX, after=at(0), share=0.5) is None
    assert still.changed_since(BOX, after=at(0), share=0.2) == at(10)


def test_the_answer_is_when_share_of_the_changed_part_had_changed():
    # The top 60 % of BOX shows from 10 s, the rest from 30 s (the item in front of it left).
    top = ((100, 60, 140, 84), (200, 60, 20))
    still = StillnessMap(settle_s=1.0)
    play(still, lambda s: frame(CRATE) if s >= 30 else frame(top) if s >= 10 else frame(), 40)
    assert still.changed_since(BOX, after=at(0), share=0.5) == at(10)
    assert still.changed_since(BOX, after=at(0), share=0.7) == at(30)


def test_large_frames_are_reduced_and_boxes_mapped_to_cells():
    still = StillnessMap(settle_s=1.0, max_side=320)
    big = ((600, 300, 840, 540), (200, 60, 20))  # 1920x1080: a factor of 6
    play(still, lambda s: frame(big, size=(1080, 1920)) if s >= 5 else frame(size=(1080, 1920)), 10)
    assert still.changed_since((600, 300, 840, 540), after=at(0)) == at(5)
    assert still.changed_since((0, 0, 200, 200), after=at(0)) is None


def test_nothing_is_known_before_the_first_frame():
    assert StillnessMap().changed_since(BOX, after=at(0)) is None


def test_frames_out_of_order_or_of_another_size_are_refused():
    still = StillnessMap()
    still.update(frame(), at(5))
    with pytest.raises(ValueError, match="capture order"):
        still.update(frame(), at(4))
    with pytest.raises(ValueError, match="frame size changed"):
        still.update(frame(size=(100, 100)), at(6))


@pytest.mark.parametrize(
    "kwargs", [{"tolerance": 0}, {"tolerance": 255}, {"settle_s": -1}, {"max_side": 4}, {"memory": -1}]
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        StillnessMap(**kwargs)
