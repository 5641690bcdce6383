"""The narrow COCO branch: what fusion reads of COCO, how the branch starts from COCO's own, and that
distillation brings it towards its teacher."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES
from training.real_sets import COCO80, COCO_TO_FEIXIAN

torch = pytest.importorskip("torch")

COCO_PT = SHARED / "models" / "yolov8n.pt"
COCO128 = SHARED / "data" / "real" / "coco128" / "images"


def _fused_by_argmax(coco, ours):
    """The fusion rule as v18 wrote it, straight from COCO's 80 scores: the reference `fuse_scores` must keep."""
    from training.dual_head import STATE_ROWS

    known_names = list(COCO_TO_FEIXIAN)
    keep = torch.tensor([float(n in known_names) for n in COCO80])
    known = keep[coco.argmax(1)].unsqueeze(1)
    foreign = (1 - known) * coco.amax(1, keepdim=True)
    coco_of = {ours_name: theirs for theirs, ours_name in COCO_TO_FEIXIAN.items()}
    supplied = torch.tensor([float(c in coco_of) for c in CLASSES]).view(1, -1, 1)
    rows = [COCO80.index(coco_of[c]) if c in coco_of else 0 for c in CLASSES]
    ours = ours * (1 - supplied * foreign)
    trust = 1 - torch.tensor([float(c == "truck") for c in CLASSES]).view(1, -1, 1) * ours[:, list(STATE_ROWS)].amax(
        1, keepdim=True
    )
    return ours.maximum(coco[:, rows] * supplied * known * trust)


def test_fusion_reads_only_the_summary_of_cocos_scores():
    """`fuse_scores` on `coco_summary` (six known rows and the best foreign one) gives what the rule gives on
    all 80 rows, so a branch that outputs only the summary can stand in for COCO's."""
    from training.dual_head import coco_summary, fuse_scores, fusion_buffers

    g = torch.Generator().manual_seed(3)
    coco = torch.rand(2, 80, 500, generator=g) ** 4  # mostly low, some confident: both sides of every rule
    ours = torch.rand(2, len(CLASSES), 500, generator=g)
    got = fuse_scores(coco_summary(coco), ours, **fusion_buffers())
    assert torch.allclose(got, _fused_by_argmax(coco, ours))


def test_coco_summary_takes_the_best_foreign_class():
    from training.dual_head import SUMMARY_ROWS, coco_summary

    coco = torch.zeros(1, 80, 3)
    coco[0, COCO80.index("bus"), 0] = 0.7
    coco[0, COCO80.index("pizza"), 0] = 0.9
    coco[0, COCO80.index("person"), 1] = 0.8
    summary = coco_summary(coco)
    assert summary.shape == (1, SUMMARY_ROWS, 3)
    assert summary[0, -1].tolist() == pytest.approx([0.9, 0.0, 0.0])
    assert summary[0, list(COCO_TO_FEIXIAN).index("person"), 1] == pytest.approx(0.8)


@pytest.fixture(scope="module")
def coco():
    pytest.importorskip("ultralytics")
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(str(need(COCO_PT)), device="cpu")
    model = model.float().eval()
    model.fuse(verbose=False)
    return model


def test_a_full_width_copy_scores_the_known_classes_as_coco_does(coco):
    """At COCO's own width the copy keeps every channel, so its known rows are COCO's logits exactly: the
    channel bookkeeping that narrower copies start from is right."""
    from training.dual_head import KNOWN_ROWS, neck_features, per_anchor
    from training.narrow_coco_head import narrow_head

    head = narrow_head(coco.model[-1].cv3, width=80, levels=(0, 1, 2)).eval()
    with torch.no_grad():
        feats = neck_features(coco, torch.rand(1, 3, 256, 320))
        theirs = per_anchor(coco.model[-1].cv3, feats, 80)
        ours = per_anchor(head, feats, len(KNOWN_ROWS) + 1)
    assert torch.allclose(ours[:, :-1], theirs[:, list(KNOWN_ROWS)], atol=1e-4)


def test_distillation_brings_a_narrow_branch_towards_its_teacher(coco, tmp_path):
    """A few epochs on six real photos: the loss falls and the scores move towards COCO's on those photos."""
    from training.dual_head import load_head, save_head
    from training.narrow_coco_head import NARROW_LEVELS, cache, fidelity, narrow_head, train

    # photos with small people and cars: what COCO scores at stride 8, the level the narrow branch stands in at
    images = [need(COCO128) / f"0000000000{n}.jpg" for n in ("49", "61", "73", "74", "09", "25")]
    samples = cache(COCO_PT, images, threads=1)
    head = narrow_head(coco.model[-1].cv3, width=16)
    before = fidelity(head.eval(), samples)
    history = train(head, samples, epochs=6, lr=3e-3, batch=3, log=lambda _: None)
    after = fidelity(head.eval(), samples)
    assert history[-1] < history[0]
    assert before["anchors"] > 10
    assert after["mean_abs_diff"] < before["mean_abs_diff"]
    saved = save_head(head, NARROW_LEVELS, tmp_path / "head.pt", {"epochs": 6})
    again, levels = load_head(saved)
    assert levels == NARROW_LEVELS
    assert fidelity(again, samples) == after


def test_a_file_that_is_no_head_is_refused(tmp_path):
    from training.dual_head import DualHeadError, load_head

    bad = tmp_path / "head.pt"
    torch.save({"something": 1}, bad)
    with pytest.raises(DualHeadError, match="not a narrow COCO head"):
        load_head(bad)


def test_the_export_with_a_narrow_branch_drops_cocos_there_and_boxes_alike(coco, tmp_path):
    """Exported with a narrow stride-8 level, the detector no longer holds COCO's 80-wide one there (its other
    levels stay), and its boxes are the ones the 80-wide export draws (the box branch is the same)."""
    import onnx
    import onnxruntime as ort

    from training.dual_head import branch_checkpoint, export_dual, head_from_dual, load_head, save_head
    from training.narrow_coco_head import NARROW_LEVELS, narrow_head

    branch = branch_checkpoint(COCO_PT, tmp_path / "branch.pt")
    head = save_head(narrow_head(coco.model[-1].cv3, width=16), NARROW_LEVELS, tmp_path / "head.pt", {})
    wide = export_dual(COCO_PT, branch, tmp_path / "wide.onnx", {})
    narrow = export_dual(COCO_PT, branch, tmp_path / "narrow.onnx", {}, coco_head=head)

    def shapes(path):
        return {tuple(i.dims) for i in onnx.load(str(path)).graph.initializer}

    cocos_stride8 = (80, 64, 3, 3)  # COCO's first class convolution at stride 8: 64 channels in, 80 out
    assert cocos_stride8 in shapes(wide) and cocos_stride8 not in shapes(narrow)
    assert (80, 128, 3, 3) in shapes(narrow)  # stride 16 keeps COCO's own
    blob = np.random.default_rng(0).random((1, 3, 256, 320), dtype=np.float32)
    a, b = (ort.InferenceSession(str(p)).run(None, {"images": blob})[0] for p in (wide, narrow))
    assert a.shape == b.shape == (1, 4 + len(CLASSES), a.shape[2])
    assert np.abs(a[:, :4] - b[:, :4]).max() < 1e-3
    # the narrow level comes back out of the export whole, so a new fusion rule is one export away
    recovered, levels = load_head(head_from_dual(narrow, tmp_path / "recovered.pt"))
    assert levels == NARROW_LEVELS
    for x, y in zip(load_head(head)[0].state_dict().values(), recovered.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert head_from_dual(wide, tmp_path / "none.pt") is None
