"""Training with COCO's scores kept (`training.coco_scores`, `feixian train --keep-coco-scores`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES

pytest.importorskip("ultralytics")

from training.coco_scores import KEPT, ROWS, inside_labelled_boxes, score_loss  # noqa: E402
from training.real_sets import COCO80  # noqa: E402

COCO_PT = SHARED / "models" / "yolov8n.pt"
CHAIR, STALL = CLASSES.index("chair"), CLASSES.index("stall")


def test_the_kept_rows_pair_each_class_with_cocos_own():
    assert {(CLASSES[s], COCO80[t]) for s, t in ROWS} == {
        ("person", "person"),
        ("car", "car"),
        ("chair", "chair"),
        ("table", "dining table"),
        ("umbrella", "umbrella"),
    }
    assert "truck" not in KEPT  # COCO's one truck score would blur plain, dirty and uncovered


def test_an_anchor_is_inside_only_the_boxes_of_its_own_image_and_class():
    anchors = torch.tensor([[5.0, 5.0], [15.0, 5.0], [50.0, 50.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 20.0], [40.0, 40.0, 60.0, 60.0]])
    inside = inside_labelled_boxes(anchors, boxes, torch.tensor([CHAIR, STALL, CHAIR]), torch.tensor([0, 0, 1]), 2)
    assert inside.shape == (2, len(CLASSES), 3)
    assert inside[0, CHAIR].tolist() == [True, False, False]
    assert inside[0, STALL].tolist() == [True, True, False]
    assert inside[1, CHAIR].tolist() == [False, False, True]
    assert int(inside.sum()) == 4
    assert not inside_labelled_boxes(anchors, torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 2).any()


def test_the_teachers_score_is_a_target_but_where_a_label_of_its_class_says_otherwise():
    teacher = torch.full((1, 80, 4), -6.0)
    teacher[0, COCO80.index("chair"), 0] = 4.0  # COCO sees a chair at anchor 0, unlabelled
    teacher[0, COCO80.index("chair"), 3] = 2.0  # and at anchor 3, inside a labelled chair: a real one
    inside = torch.zeros(1, len(CLASSES), 4, dtype=torch.bool)
    inside[0, CHAIR, 2:] = True  # labelled chairs cover anchors 2 (one COCO does not see: rendered) and 3
    student = torch.full((1, len(CLASSES), 4), -6.0)
    student[0, CHAIR, 1] = 0.0  # unsure where COCO sees nothing
    student.requires_grad_()
    score_loss(student, teacher, inside).backward()
    grad = student.grad[0]
    assert grad[CHAIR, 0] < 0  # raise the chair score where COCO sees one
    assert grad[CHAIR, 3] < 0  # labelled and seen by COCO: held to COCO's score too
    assert grad[CHAIR, 2] == 0  # labelled, COCO blind: the label decides there
    assert grad[CHAIR, 1] > 0  # nothing there for COCO: lower the student's score
    assert not grad[STALL].any()  # a class COCO does not know is left to the labels
    assert not grad[CLASSES.index("truck")].any()
    # A student that agrees with the teacher costs less than one that does not.
    agrees = student.detach().clone()
    agrees[0, CHAIR, 0] = 4.0
    assert score_loss(agrees, teacher, inside) < score_loss(student.detach(), teacher, inside)


def test_keeping_cocos_scores_needs_a_teacher(tmp_path, capsys):
    from test_training_smoke import make_dataset

    from feixian.cli import main

    data = make_dataset(tmp_path / "shapes", n_train=2, n_val=1)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m.onnx"), "--keep-coco-scores", "1"]) == 2
    assert "distill_model" in capsys.readouterr().err


def test_a_run_with_cocos_scores_kept_trains_and_exports_the_student(tmp_path):
    """One epoch of yolov8n's network for feixian's classes (started from COCO's rows) with yolov8n as teacher:
    the distillation term is in the logged loss, and the export is the bare student."""
    import onnxruntime as ort
    from test_training_smoke import make_dataset

    from feixian.cli import main
    from training.dual_head import branch_checkpoint

    coco = need(COCO_PT)
    data = make_dataset(tmp_path / "shapes", n_train=8, n_val=2)
    data.write_text(yaml.safe_dump(yaml.safe_load(data.read_text()) | {"names": list(CLASSES)}))
    init = branch_checkpoint(coco, tmp_path / "init64.pt", width=64)
    out = tmp_path / "kept.onnx"
    argv = ["train", "--data", str(data), "--out", str(out), "--weights", str(init), "--model-yaml", "yolov8n.yaml"]
    argv += ["--epochs", "1", "--imgsz", "128", "--batch", "4", "--workers", "0", "--runs-dir", str(tmp_path / "runs")]
    argv += ["--keep-coco-scores", "1", "--hyp", f"distill_model={coco}", "--hyp", "mosaic=0", "--hyp", "val=false"]
    argv += ["--summary", str(tmp_path / "summary.json")]
    assert main(argv) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["keep_coco_scores"] == 1.0
    results = (tmp_path / "runs" / "kept" / "results.csv").read_text().splitlines()
    header, row = results[0].split(","), results[1].split(",")
    assert float(row[header.index("train/dis_loss")]) > 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()  # the student alone: one input, its own 11 classes
    (output,) = session.run(None, {image.name: np.zeros((1, 3, 128, 128), np.float32)})
    assert output.shape == (1, 4 + len(CLASSES), 16 * 16 + 8 * 8 + 4 * 4)
