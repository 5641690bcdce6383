"""The dual-head detector: COCO's classes found at least where yolov8n finds them, and its frozen-weights guard."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES
from training.dual_head import DualHeadError
from training.real_sets import COCO_TO_FEIXIAN

# the classes whose boxes COCO gives exactly as yolov8n does (a truck may take the branch's state instead)
COCO_KEPT = {coco: ours for coco, ours in COCO_TO_FEIXIAN.items() if ours != "truck"}

COCO_PT = SHARED / "models" / "yolov8n.pt"
COCO128 = SHARED / "data" / "real" / "coco128" / "images"


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


def test_coco_classes_are_found_at_least_where_yolov8n_finds_them(exports):
    """Each class COCO knows scores the higher of COCO's row and the new branch, on the same boxes: every box
    yolov8n draws (through the class map) is drawn again, as confident or more (NMS may keep a neighbouring
    anchor's box instead, so the two overlap beyond the NMS threshold rather than exactly)."""
    import supervision as sv

    from pipeline.detector import OnnxDetector

    _, dual_path, base_path = exports
    dual = OnnxDetector(dual_path, 0.2, 0.5)
    base = OnnxDetector(base_path, 0.2, 0.5, class_map=COCO_KEPT)
    assert dual.class_names == CLASSES
    compared = 0
    for image in sorted(need(COCO128).glob("*.jpg"))[:30]:
        frame = cv2.imread(str(image))
        ours, theirs = dual.detect(frame), base.detect(frame)
        for box, name, conf in zip(theirs.xyxy, theirs.data["class_name"], theirs.confidence, strict=True):
            same = ours.data["class_name"] == name
            iou = sv.box_iou_batch(box[None], ours.xyxy[same])[0] if same.any() else np.zeros(0)
            assert iou.size and (ours.confidence[same][iou > 0.5] >= conf - 1e-4).any(), (image.name, name, conf)
            compared += 1
    assert compared > 40  # the images do hold people, cars, chairs and tables


def test_the_export_boxes_every_anchor_as_yolov8ns_own_export(exports):
    """The dual export decodes boxes with its own DFL (`last_axis_dfl`, faster in ONNX Runtime); at every anchor of
    a real photo its boxes are Ultralytics' export's to a thousandth of a pixel."""
    import onnxruntime as ort

    _, dual_path, base_path = exports
    frame = cv2.resize(cv2.imread(str(sorted(need(COCO128).glob("*.jpg"))[0])), (640, 384))
    blob = np.ascontiguousarray(frame[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    ours, theirs = (ort.InferenceSession(str(p)).run(None, {"images": blob})[0] for p in (dual_path, base_path))
    assert ours.shape[2] == theirs.shape[2] == 80 * 48 + 40 * 24 + 20 * 12
    assert np.abs(ours[0, :4] - theirs[0, :4]).max() < 1e-3


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


def test_the_branch_comes_back_out_of_an_export(exports, tmp_path):
    """`branch_from_dual` reads the folded branch out of an export; exported again, it scores every anchor as
    the first export did (what lets a new fusion rule ship without retraining)."""
    import onnxruntime as ort
    import torch

    from training.dual_head import branch_from_dual, export_dual

    init, untrained, _ = exports
    ckpt = torch.load(init, weights_only=False)
    with torch.no_grad():  # a branch unlike the one every fresh checkpoint starts from: as if trained
        for param in ckpt["model"].model[-1].cv3.parameters():
            param.add_(0.05 * torch.randn_like(param))
    torch.save(ckpt, tmp_path / "trained.pt")
    trained = export_dual(COCO_PT, tmp_path / "trained.pt", tmp_path / "trained.onnx", {})
    branch = branch_from_dual(COCO_PT, trained, tmp_path / "branch.pt")
    again = export_dual(COCO_PT, branch, tmp_path / "again.onnx", {})
    frame = cv2.resize(cv2.imread(str(sorted(need(COCO128).glob("*.jpg"))[0])), (640, 480))
    blob = np.ascontiguousarray(frame[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    fresh, first, second = (
        ort.InferenceSession(str(p)).run(None, {"images": blob})[0] for p in (untrained, trained, again)
    )
    assert np.abs(fresh[:, 4:] - first[:, 4:]).max() > 0.01  # the trained branch scores differently
    assert np.abs(first[:, 4:] - second[:, 4:]).max() < 1e-4
    assert np.abs(first[:, :4] - second[:, :4]).max() < 0.01  # pixels


def test_an_export_without_a_branch_is_refused(exports, tmp_path):
    from training.dual_head import branch_from_dual

    _, _, base_path = exports
    with pytest.raises(DualHeadError, match="no branch weights"):
        branch_from_dual(COCO_PT, base_path, tmp_path / "branch.pt")


def test_a_64_wide_branch_is_yolov8ns_own_network_for_feixians_classes(tmp_path):
    """At width 64 the checkpoint is yolov8n.yaml's network for 11 classes, layer for layer, so Ultralytics'
    trainer takes it whole (training it unfrozen); its class rows start from COCO's, not at random."""
    pytest.importorskip("ultralytics")
    import torch
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    from training.dual_head import branch_checkpoint, source_rows

    model, _ = load_checkpoint(str(branch_checkpoint(need(COCO_PT), tmp_path / "init64.pt", width=64)), device="cpu")
    coco, _ = load_checkpoint(str(COCO_PT), device="cpu")
    plain = DetectionModel(coco.yaml | {"nc": len(CLASSES)}, nc=len(CLASSES), verbose=False)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    rows = torch.tensor([row for row, _ in source_rows(CLASSES)])
    person = CLASSES.index("person")
    assert torch.allclose(model.model[-1].cv3[0][2].bias[person], coco.model[-1].cv3[0][2].bias[rows[person]].float())
    with pytest.raises(DualHeadError, match="1 to 80 channels"):
        branch_checkpoint(COCO_PT, tmp_path / "wide.pt", width=96)
