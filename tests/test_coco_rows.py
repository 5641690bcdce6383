"""One network trained whole with COCO's own rows held beside feixian's (`training.coco_rows`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES

pytest.importorskip("ultralytics")

from training.coco_rows import HELD_ROWS, NAMES, fuse_held, held_rows_loss, rows_data  # noqa: E402
from training.dual_head import DualHeadError  # noqa: E402
from training.real_sets import COCO80  # noqa: E402

COCO_PT = SHARED / "models" / "yolov8n.pt"


def test_each_held_row_follows_feixians_classes_and_reads_cocos_own():
    assert NAMES[: len(CLASSES)] == CLASSES
    assert {(NAMES[s], COCO80[t]) for s, t in HELD_ROWS} == {
        ("coco_person", "person"),
        ("coco_car", "car"),
        ("coco_chair", "chair"),
        ("coco_table", "dining table"),
        ("coco_umbrella", "umbrella"),
    }


def test_a_class_scores_the_higher_of_its_two_rows_and_a_foreign_layout_is_refused():
    scores = torch.rand(2, len(NAMES), 7)
    fused = fuse_held(scores)
    assert fused.shape == (2, len(CLASSES), 7)
    for i, name in enumerate(CLASSES):
        held = f"coco_{name}"
        expected = scores[:, i].maximum(scores[:, NAMES.index(held)]) if held in NAMES else scores[:, i]
        assert torch.equal(fused[:, i], expected), name
    with pytest.raises(DualHeadError, match="starts with feixian's classes"):
        fuse_held(scores, tuple(reversed(NAMES)))


def test_only_the_held_rows_learn_the_teachers_scores():
    teacher = torch.full((1, 80, 3), -6.0)
    teacher[0, COCO80.index("chair"), 0] = 4.0
    student = torch.zeros(1, len(NAMES), 3, requires_grad=True)
    held_rows_loss(student, teacher).backward()
    grad = student.grad[0]
    assert not grad[: len(CLASSES)].any()  # feixian's rows answer to the labels alone
    chair = NAMES.index("coco_chair")
    assert grad[chair, 0] < 0 and grad[chair, 1] > 0  # raised where COCO sees a chair, lowered elsewhere
    agrees = torch.full((1, len(NAMES), 3), -6.0)
    agrees[0, chair, 0] = 4.0
    assert abs(float(held_rows_loss(agrees, teacher))) < 1e-4


def test_the_dataset_copy_names_the_held_rows_and_refuses_other_classes(tmp_path):
    (tmp_path / "d").mkdir()
    src = tmp_path / "d" / "data.yaml"
    src.write_text(yaml.safe_dump({"path": ".", "train": "train/images", "val": "val/images", "names": list(CLASSES)}))
    spec = yaml.safe_load(rows_data(src, tmp_path / "rows" / "data.yaml").read_text())
    assert tuple(spec["names"].values()) == NAMES and spec["nc"] == len(NAMES)
    assert spec["path"] == str(tmp_path / "d") and spec["train"] == "train/images"
    src.write_text(yaml.safe_dump({"path": ".", "names": ["cat", "dog"]}))
    with pytest.raises(DualHeadError, match="expected feixian's classes"):
        rows_data(src, tmp_path / "rows" / "bad.yaml")


def test_the_held_rows_start_as_yolov8n_scores_them(tmp_path):
    from ultralytics.nn.tasks import load_checkpoint

    from training.coco_rows import HELD, WIDTH
    from training.dual_head import branch_checkpoint, neck_features, per_anchor

    coco = need(COCO_PT)
    ours, _ = load_checkpoint(str(branch_checkpoint(coco, tmp_path / "init.pt", WIDTH, HELD)))
    theirs, _ = load_checkpoint(str(coco))
    assert tuple(ours.names.values()) == NAMES
    x = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        a = per_anchor(ours.float().eval().model[-1].cv3, neck_features(ours, x), len(NAMES))
        b = per_anchor(theirs.float().eval().model[-1].cv3, neck_features(theirs, x), 80)
    for s, t in HELD_ROWS:
        assert torch.allclose(a[:, s], b[:, t], atol=1e-4)
    with pytest.raises(DualHeadError, match="no COCO row to hold"):
        branch_checkpoint(coco, tmp_path / "bad.pt", WIDTH, ("stall",))


def test_a_held_rows_run_trains_whole_and_exports_feixians_classes(tmp_path):
    """One epoch at 128 px from `init`: the held rows got no label loss (class weight 0), the distillation term
    is logged, and the export folds the held rows in, its output Ultralytics' (1, 4 + 11, anchors)."""
    import onnxruntime as ort
    from test_training_smoke import make_dataset
    from ultralytics.nn.tasks import load_checkpoint

    from training.coco_rows import main

    coco = need(COCO_PT)
    data = make_dataset(tmp_path / "shapes", n_train=8, n_val=2)
    data.write_text(yaml.safe_dump(yaml.safe_load(data.read_text()) | {"names": list(CLASSES)}))
    assert main(["init", "--coco", str(coco), "--out", str(tmp_path / "init.pt")]) == 0
    assert main(["data", "--data", str(data), "--out", str(tmp_path / "rows.yaml")]) == 0
    run = tmp_path / "runs" / "rows"
    argv = ["train", "--init", str(tmp_path / "init.pt"), "--data", str(tmp_path / "rows.yaml"), "--run-dir", str(run)]
    argv += ["--teacher", str(coco), "--hours", "0.001", "--hyp", "imgsz=128", "--hyp", "batch=4", "--hyp", "workers=0"]
    assert main(argv) == 0
    results = (run / "results.csv").read_text().splitlines()
    header, row = results[0].split(","), results[1].split(",")
    assert float(row[header.index("train/dis_loss")]) > 0
    trained, _ = load_checkpoint(str(run / "weights" / "last.pt"))
    assert trained.class_weights.tolist() == [float(n in CLASSES) for n in NAMES]
    out = tmp_path / "rows.onnx"
    assert main(["export", "--checkpoint", str(run / "weights" / "last.pt"), "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"images": np.zeros((1, 3, 128, 128), np.float32)})
    assert output.shape == (1, 4 + len(CLASSES), 16 * 16 + 8 * 8 + 4 * 4)


class _Wrapper(torch.nn.Module):
    """Stands in for the distillation wrapper that Ultralytics saves mid-run, the student inside it."""

    def __init__(self, student):
        super().__init__()
        self.student_model = student


def test_a_checkpoint_saved_mid_run_exports_its_student(tmp_path):
    from ultralytics.nn.tasks import load_checkpoint

    from training.coco_rows import HELD, WIDTH, rows_module
    from training.dual_head import branch_checkpoint

    student, _ = load_checkpoint(str(branch_checkpoint(need(COCO_PT), tmp_path / "init.pt", WIDTH, HELD)))
    torch.save({"model": _Wrapper(student)}, tmp_path / "mid.pt")
    x = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        mid, whole = rows_module(tmp_path / "mid.pt")(x), rows_module(tmp_path / "init.pt")(x)
    assert mid.shape == (1, 4 + len(CLASSES), 16 * 20 + 8 * 10 + 4 * 5)
    assert torch.allclose(mid, whole)
