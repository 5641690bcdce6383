"""The real photo sets: their labels read under their own names and mapped onto feixian's, unmapped classes
dropped, and test parts that never change."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED

from pipeline.taxonomy import CLASSES
from training.real_sets import COCO80, REAL_SETS, RealSet

DATA = SHARED / "data"
# Per set: a source class mapped onto feixian's, one left as background, and what each must become.
EXPECTED_MAPS = {
    "coco128": {"dining table": "table", "person": "person", "bench": None, "bus": None, "suitcase": None},
    "vehicles_openimages": {"car": "car", "truck": "truck", "bus": None, "motorcycle": None, "ambulance": None},
    "highway_night": {"car": "car", "truck": "truck", "bus": None, "bike": None},
}


def foreign_set(root: Path, files: dict[str, list[str]]) -> RealSet:
    """A set of three classes under `root/real/tiny`, split per file name; `files` maps stems to label rows."""
    (root / "real/tiny/images").mkdir(parents=True, exist_ok=True)
    (root / "real/tiny/labels").mkdir(parents=True, exist_ok=True)
    for stem, rows in files.items():
        cv2.imwrite(str(root / f"real/tiny/images/{stem}.jpg"), np.zeros((8, 8, 3), np.uint8))
        (root / f"real/tiny/labels/{stem}.txt").write_text("\n".join(rows) + "\n")
    return RealSet(
        name="tiny",
        root="real/tiny",
        names=("lorry", "omnibus", "auto"),
        class_map={"lorry": "truck", "auto": "car"},
        splits={".": "split"},
        test_share=0.5,
        labelled=frozenset({"truck", "car"}),
    )


def test_labels_are_read_under_source_names_and_unmapped_ones_dropped(tmp_path):
    rows = ["0 0.5 0.5 0.2 0.4", "1 0.1 0.2 0.1 0.1", "2 0.3 0.3 0.2 0.2", "not a row"]
    s = foreign_set(tmp_path, {"a": rows})
    image = tmp_path / "real/tiny/images/a.jpg"
    assert s.source_labels(image) == [
        ("lorry", (0.5, 0.5, 0.2, 0.4)),
        ("omnibus", (0.1, 0.2, 0.1, 0.1)),
        ("auto", (0.3, 0.3, 0.2, 0.2)),
    ]
    assert s.labels(image) == [("truck", (0.5, 0.5, 0.2, 0.4)), ("car", (0.3, 0.3, 0.2, 0.2))]
    (tmp_path / "real/tiny/labels/a.txt").unlink()
    assert s.labels(image) == [] and s.source_labels(image) == []  # no label file: no object


def test_the_test_part_stays_the_same_when_images_are_added(tmp_path):
    s = foreign_set(tmp_path, {f"img{k}": [] for k in range(40)})
    test, train = s.images(tmp_path, "test"), s.images(tmp_path, "train")
    assert test and train and not set(test) & set(train) and len(test) + len(train) == 40
    foreign_set(tmp_path, {f"new{k}": [] for k in range(40)})
    assert set(test) <= set(s.images(tmp_path, "test"))
    assert not set(test) & set(s.images(tmp_path, "train"))


@pytest.mark.parametrize("name", sorted(REAL_SETS))
def test_each_real_set_maps_its_classes(name):
    s = REAL_SETS[name]
    assert {src: s.map_class(src) for src in EXPECTED_MAPS[name]} == EXPECTED_MAPS[name]
    assert set(s.class_map) <= set(s.names) and set(s.class_map.values()) <= set(CLASSES)
    assert set(s.class_map.values()) == s.labelled  # every class a set maps to is one it labels
    if name == "coco128":
        assert s.names == COCO80 and COCO80.index("dining table") == 60


@pytest.mark.parametrize("name", sorted(REAL_SETS))
def test_each_real_set_on_disk_has_disjoint_stable_parts_and_parsable_labels(name):
    s = REAL_SETS[name]
    if not (DATA / s.root).is_dir():
        pytest.skip(f"real test material missing: {DATA / s.root}")
    test, train = s.images(DATA, "test"), s.images(DATA, "train")
    assert test and train and not set(test) & set(train)
    assert s.images(DATA, "test") == test
    mapped = 0
    for image in test:
        source = s.source_labels(image)
        assert all(src in s.names for src, _ in source)
        labels = s.labels(image)
        assert [c for c, _ in labels] == [m for src, _ in source if (m := s.map_class(src)) is not None]
        assert all(0 <= v <= 1.0001 for _, box in labels for v in box)
        mapped += len(labels)
    assert mapped > 0
