"""Labelled frames of training scenes: they are the scenes' video frames, deterministic, and join a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.synth import frames
from training.synth.dataset import FRAMES_PER_SCENE, write_dataset
from training.synth.frames import SCENE_KINDS, render_frame, scenario_backdrop, scene_frames, training_scene
from training.synth.timeline import NoCameraError

SIZE = (640, 360)


def test_scene_frames_are_frames_of_the_scene_video() -> None:
    frames = scene_frames(seed=3, scene=1, size=SIZE, count=3)
    plan = training_scene(3, 1, SIZE)
    backdrop = scenario_backdrop(plan)
    assert [k for k, _, _ in frames] == sorted({k for k, _, _ in frames})
    for k, img, labels in frames:
        video_img, video_labels = render_frame(plan, backdrop, k)
        assert np.array_equal(img, video_img)
        assert labels == [label for _, label in video_labels]


def test_training_scenes_cycle_the_scene_kinds_with_their_own_streets() -> None:
    plans = [training_scene(3, scene, SIZE) for scene in range(len(SCENE_KINDS))]
    assert [p.spec.kind for p in plans] == list(SCENE_KINDS)
    assert len({p.spec.seed for p in plans} | {training_scene(4, 0, SIZE).spec.seed}) == len(plans) + 1


def test_a_scene_has_only_so_many_frames() -> None:
    with pytest.raises(ValueError, match="750 frames"):
        scene_frames(seed=3, scene=0, size=SIZE, count=751)


def test_a_frame_too_small_for_any_camera_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # every draw fails alike at this size; two show the retry ends in the error as well as ten (27 s) do
    monkeypatch.setattr(frames, "MAX_SCENE_DRAWS", 2)
    with pytest.raises(NoCameraError, match="training scene 0 of seed 3 at 128x72"):
        training_scene(3, 0, (128, 72))


def test_frames_join_the_dataset_a_scene_to_a_split(tmp_path: Path) -> None:
    one = write_dataset(tmp_path / "one", seed=3, count=2, size=SIZE, progress=False, frames=FRAMES_PER_SCENE + 2)
    two = write_dataset(
        tmp_path / "two", seed=3, count=2, size=SIZE, progress=False, frames=FRAMES_PER_SCENE + 2, workers=2
    )
    root = one.parent
    val = sorted(p.stem for p in (root / "images" / "val").glob("*.jpg"))
    train = sorted(p.stem for p in (root / "images" / "train").glob("*.jpg"))
    # Image 0 and scene 0 go to validation; image 1 and the two frames of scene 1 to training.
    assert len(val) == 1 + FRAMES_PER_SCENE and len(train) == 3
    assert sum(s.startswith("s3_scene00000_") for s in val) == FRAMES_PER_SCENE
    assert sum(s.startswith("s3_scene00001_") for s in train) == 2
    for image in sorted(root.glob("images/*/*.jpg")):
        assert (two.parent / image.relative_to(root)).read_bytes() == image.read_bytes()
        label = root / "labels" / image.parent.name / f"{image.stem}.txt"
        assert label.read_text() == (two.parent / label.relative_to(root)).read_text()
    assert any(p.read_text() for p in root.glob("labels/*/s3_scene*.txt"))
