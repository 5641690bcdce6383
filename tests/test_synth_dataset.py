"""The synthetic image dataset: deterministic, valid YOLO labels, all classes present, loadable by Ultralytics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.taxonomy import CLASSES
from training.synth.dataset import generate_hidden_pile_image, generate_image, write_dataset

SIZE = (320, 180)


def _label_lines(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(root.glob("labels/*/*.txt"))}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "dataset"
    write_dataset(out, seed=11, count=12, size=SIZE, progress=False)
    return out


def test_same_seed_same_images_and_labels(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_dataset(again, seed=11, count=12, size=SIZE, progress=False)
    assert _label_lines(again) == _label_lines(tiny)
    img_a, labels_a = generate_image(11, 3, SIZE)
    img_b, labels_b = generate_image(11, 3, SIZE)
    assert np.array_equal(img_a, img_b) and labels_a == labels_b


def test_parallel_workers_write_the_same_set(tiny: Path, tmp_path: Path) -> None:
    parallel = tmp_path / "parallel"
    write_dataset(parallel, seed=11, count=12, size=SIZE, progress=False, workers=2)
    assert _label_lines(parallel) == _label_lines(tiny)
    for image in sorted(tiny.glob("images/*/*.jpg")):
        assert (parallel / image.relative_to(tiny)).read_bytes() == image.read_bytes()


def test_distinct_seeds_give_distinct_images() -> None:
    a, _ = generate_image(11, 0, SIZE)
    b, _ = generate_image(12, 0, SIZE)
    c, _ = generate_image(11, 1, SIZE)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_labels_are_valid_yolo_boxes_inside_the_image(tiny: Path) -> None:
    rows = [line.split() for text in _label_lines(tiny).values() for line in text.splitlines()]
    assert rows, "no labels written"
    for cls, cx, cy, w, h in rows:
        cx, cy, w, h = map(float, (cx, cy, w, h))
        assert 0 <= int(cls) < len(CLASSES)
        assert w > 0 and h > 0
        assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6
        assert cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6
        assert w * SIZE[0] >= 7.9 and h * SIZE[1] >= 7.9


def test_split_and_yaml(tiny: Path) -> None:
    import yaml

    data = yaml.safe_load((tiny / "data.yaml").read_text())
    names = data["names"]
    assert [names[i] for i in range(len(CLASSES))] == list(CLASSES)
    val = list((tiny / "images" / "val").glob("*.jpg"))
    train = list((tiny / "images" / "train").glob("*.jpg"))
    assert len(val) == 2 and len(train) == 10
    assert {p.stem for p in val} | {p.stem for p in train} == {p.stem for p in tiny.glob("labels/*/*.txt")}


def test_every_class_shows_up_in_a_small_batch() -> None:
    seen = set()
    for index in range(40):
        _, labels = generate_image(5, index, (640, 360))
        seen |= {label.class_id for label in labels}
    assert seen == set(range(len(CLASSES)))


def test_ultralytics_reads_the_dataset(tiny: Path) -> None:
    utils = pytest.importorskip("ultralytics.data.utils")
    info = utils.check_det_dataset(str(tiny / "data.yaml"))
    assert info["nc"] == len(CLASSES)
    assert Path(info["val"]).is_dir()


def test_rejects_an_empty_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one image"):
        write_dataset(tmp_path, seed=0, count=0, size=SIZE, progress=False)


def test_eval_scores_every_image_of_a_generated_set_by_default(tiny: Path) -> None:
    from training.evaluate import split_images

    images, _, split = split_images(tiny / "data.yaml", None)
    assert split == "test" and len(images) == 12
    assert len(split_images(tiny / "data.yaml", "val")[0]) == 2


def _covered_share(box: tuple[float, ...], by: tuple[float, ...]) -> float:
    w = max(0.0, min(box[2], by[2]) - max(box[0], by[0]))
    h = max(0.0, min(box[3], by[3]) - max(box[1], by[1]))
    return w * h / ((box[2] - box[0]) * (box[3] - box[1]))


def test_hidden_pile_images_put_a_chair_or_table_in_front_of_a_pile() -> None:
    goods, blockers = CLASSES.index("goods"), {CLASSES.index("chair"), CLASSES.index("table")}
    hidden = 0
    for index in range(16):
        img, labels = generate_hidden_pile_image(5, index, (640, 360))
        piles = [label.box for label in labels if label.class_id == goods]
        fronts = [label.box for label in labels if label.class_id in blockers]
        hidden += any(_covered_share(p, f) >= 0.2 for p in piles for f in fronts)
        if index < 4:
            again, labels_again = generate_hidden_pile_image(5, index, (640, 360))
            assert np.array_equal(img, again) and labels == labels_again
    # Where a street leaves no free, visible spot by the shops, an image has no pile at all; a stool in
    # front often covers under a fifth of the pile's drawn box (its footprint is a chair's).
    assert hidden >= 5, f"only {hidden} of 16 images show a pile a fifth or more behind a chair or table"


def test_hidden_pile_images_join_a_set_without_changing_its_plain_images(tiny: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    write_dataset(mixed, seed=11, count=12, size=SIZE, progress=False, hidden_piles=2)
    plain = {k: v for k, v in _label_lines(mixed).items() if "hidden" not in k}
    assert plain == _label_lines(tiny)
    hidden = sorted(p.name for p in mixed.glob("images/*/s11_hidden*.jpg"))
    assert hidden == ["s11_hidden000000.jpg", "s11_hidden000001.jpg"]
