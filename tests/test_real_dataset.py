"""`feixian real-data`: Ultralytics must read the labels written in feixian's classes, not the source set's.

A real photo is linked into the training set; Ultralytics finds an image's labels by rewriting its path
(/images/ -> /labels/). Listing a link by its resolved target once made it read the source set's own
label files, whose ids mean other classes (Open Images' car is 2, feixian's truck), and a whole model
learnt cars as trucks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES
from training.real_dataset import build
from training.real_sets import REAL_SETS

ultralytics_utils = pytest.importorskip("ultralytics.data.utils")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    need(SHARED / "data" / "real")
    out = tmp_path_factory.mktemp("real-data")
    build(out, SHARED / "data", None, seed=3, composites=4, synth_images=0, real_repeat=1)
    return out


def test_every_listed_image_resolves_to_labels_in_feixian_classes(built):
    images = (built / "train.txt").read_text().split()
    labels = ultralytics_utils.img2label_paths(images)
    assert len(images) > 500
    for label in labels:
        assert Path(label).is_relative_to(built), label
        rows = np.loadtxt(label, ndmin=2) if Path(label).stat().st_size else np.zeros((0, 5))
        assert ((rows[:, 0] >= 0) & (rows[:, 0] < len(CLASSES))).all() if len(rows) else True


def test_a_real_photos_labels_are_its_set_mapped_onto_feixian_classes(built):
    s = REAL_SETS["vehicles_openimages"]
    image = s.images(SHARED / "data", "train")[0]
    expected = sorted(CLASSES.index(c) for c, _ in s.labels(image))
    listed = next(p for p in (built / "train.txt").read_text().split() if p.endswith(f"-{image.stem}.jpg"))
    (label,) = ultralytics_utils.img2label_paths([listed])
    assert sorted(int(line.split()[0]) for line in Path(label).read_text().splitlines()) == expected


def test_held_out_parts_are_never_listed_for_training(built):
    listed = {Path(p).name for p in (built / "train.txt").read_text().split()}
    for name, s in REAL_SETS.items():
        for image in s.images(SHARED / "data", "test"):
            assert f"{name}-{image.stem}.jpg" not in listed
