"""The dual-head detector: COCO's classes exactly as yolov8n finds them, the new branch's data and its guard."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES
from training.dual_head import COCO_KEPT, NEW_CLASSES, DualHeadError, branch_dataset

COCO_PT = SHARED / "models" / "yolov8n.pt"
COCO128 = SHARED / "data" / "real" / "coco128" / "images"


def _dataset(root: Path, names) -> Path:
    for split in ("train", "val"):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        cv2.imwrite(str(images / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
        (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.4 0.4 0.3 0.3\n7 0.1 0.1 0.1 0.1\n1 0.6 0.6 0.1 0.1\n")
        (root / f"{split}.txt").write_text(str(images / "a.jpg") + "\n")
    data = {"path": str(root), "train": "train.txt", "val": "val.txt", "names": dict(enumerate(names))}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


def test_branch_dataset_keeps_only_the_new_classes_renumbered(tmp_path):
    out = branch_dataset(_dataset(tmp_path / "src", CLASSES), tmp_path / "branch")
    cfg = yaml.safe_load(out.read_text())
    assert list(cfg["names"].values()) == list(NEW_CLASSES)
    image = Path((tmp_path / "branch" / "train.txt").read_text().split()[0])
    assert image.is_symlink() and cv2.imread(str(image)).shape == (32, 32, 3)
    label = tmp_path / "branch" / "labels" / f"{image.stem}.txt"
    rows = [line.split()[0] for line in label.read_text().splitlines()]
    # person (0) and car (1) become background; truck_dirty and goods take the branch's numbers
    assert rows == [str(NEW_CLASSES.index("truck_dirty")), str(NEW_CLASSES.index("goods"))]


def test_branch_dataset_refuses_a_dataset_of_other_classes(tmp_path):
    with pytest.raises(DualHeadError, match="expected feixian's classes"):
        branch_dataset(_dataset(tmp_path / "src", ("cat", "dog")), tmp_path / "branch")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The dual detector with an untrained branch, and yolov8n's own export, from the shared checkpoint."""
    pytest.importorskip("ultralytics")
    need(COCO_PT)
    from training.dual_head import branch_checkpoint, export_dual
    from training.real_eval import export_ultralytics_onnx

    work = tmp_path_factory.mktemp("dual")
    init = branch_checkpoint(COCO_PT, work / "init.pt")
    dual = export_dual(COCO_PT, init, work / "dual.onnx", {"feixian_model": "dual-test"})
    return init, dual, export_ultralytics_onnx(COCO_PT, work / "base")


def test_coco_classes_are_exactly_yolov8n_through_the_class_map(exports):
    from pipeline.detector import OnnxDetector

    _, dual_path, base_path = exports
    dual = OnnxDetector(dual_path, 0.2, 0.5)
    base = OnnxDetector(base_path, 0.2, 0.5, class_map=COCO_KEPT)
    assert dual.class_names == CLASSES
    compared = 0
    for image in sorted(need(COCO128).glob("*.jpg"))[:30]:
        frame = cv2.imread(str(image))
        ours, theirs = dual.detect(frame), base.detect(frame)
        kept = np.isin(ours.data["class_name"], list(COCO_KEPT.values()))
        mine = sorted(zip(ours.data["class_name"][kept], np.round(ours.xyxy[kept], 2).tolist(), strict=True))
        yolo = sorted(zip(theirs.data["class_name"], np.round(theirs.xyxy, 2).tolist(), strict=True))
        assert mine == yolo, image.name
        compared += len(yolo)
    assert compared > 40  # the images do hold people, cars, chairs and tables


def test_a_branch_that_changed_shared_weights_is_refused(exports, tmp_path):
    import torch

    from training.dual_head import export_dual

    init, _, _ = exports
    ckpt = torch.load(init, weights_only=False)
    with torch.no_grad():
        ckpt["model"].model[0].conv.weight.mul_(1.01)  # a backbone that was not frozen
    torch.save(ckpt, tmp_path / "drifted.pt")
    with pytest.raises(DualHeadError, match="changed shared COCO weights"):
        export_dual(COCO_PT, tmp_path / "drifted.pt", tmp_path / "out.onnx", {})
