"""A detector that keeps what COCO learnt on real photos and adds what only our generator can teach.

Fine-tuning one YOLO head on rendered items made it forget real chairs and tables (feixian-street-v16: chair AP50
0.02 on held-out COCO photos, where yolov8n scores 0.55; one epoch with backbone and neck frozen gave 0.07). And
COCO's own network, untouched, does not see rendered furniture at all (table AP50 0.004, chair 0.07 on held-out
generated images). So the shipped network is Ultralytics' `yolov8n.pt` whole (backbone, neck, box branch and its
80-class branch, untouched) plus one narrow class branch for all of feixian's classes, fed by the same neck
features and boxed by the same box branch:

- person, car, table, chair and umbrella score the higher of COCO's own branch (through
  `training.real_sets.COCO_TO_FEIXIAN`; an anchor whose best COCO class is one feixian does not know, a bus or
  a dog, gives nothing there, as yolov8n through a class map would) and the new branch, so on real photos they
  are found at least where yolov8n finds them. Where COCO names the anchor something feixian does not know
  with confidence c (a pizza, a bowl, a bus), the branch's score of these classes is taken times 1 - c: the
  branch learnt tables from rendered ones and boxed pizzas as tables above COCO's own tables;
- a truck found by COCO stays a truck unless the branch judges its state: the plain truck scores the higher of
  the branch's and COCO's truck score times the branch's doubt about a dirty or uncovered state
  (1 - the higher of those two), so COCO finds trucks the branch misses (at night, far off) and the branch alone
  decides dirty or uncovered;
- stalls, carts and goods come from the new branch alone.

Only the new branch trains (`train_branch`), on real photos (pseudo-labelled by a larger COCO model), rendered
items composited onto them and generated streets, with everything else frozen. `export_dual` writes both as one
ONNX graph with Ultralytics' output contract (1, 4 + 11, N), so `pipeline.detector.OnnxDetector` runs it like
any other export.

>>> CLASSES.index("truck"), len(CLASSES)  # the export's class rows follow pipeline.taxonomy.CLASSES
(2, 11)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.taxonomy import CLASSES
from training.real_sets import COCO80, COCO_TO_FEIXIAN

BRANCH_WIDTH = 32  # hidden channels of the new class branch: a fifth of the work of COCO's 80-wide one
HEAD_LAYER = 22  # yolov8n's Detect layer; layers 0-21 are backbone and neck


class DualHeadError(ValueError):
    """A checkpoint or dataset given to build, train or export the dual-head detector is unusable."""


LOOKALIKES: dict[str, str] = {
    "truck_dirty": "truck",
    "truck_uncovered": "truck",
    "stall": "umbrella",  # a canopy over a counter
    "cart": "bicycle",
    "goods": "suitcase",
}
NEW_CLASS_BIAS = -3.0  # logit offset of a look-alike's row: about a twentieth of its odds at the start


def held_name(cls: str) -> str:
    """The output name of COCO's own row of feixian class `cls` kept beside feixian's (`branch_checkpoint`).

    >>> held_name("chair")
    'coco_chair'
    """
    return f"coco_{cls}"


def source_rows(classes: tuple[str, ...] = CLASSES) -> list[tuple[int, float]]:
    """For each of `classes`, the COCO row it starts from and the bias offset.

    >>> [COCO80[row] for row, _ in source_rows(("truck", "truck_dirty", "stall"))]
    ['truck', 'truck', 'umbrella']
    """
    coco_of = {ours: coco for coco, ours in COCO_TO_FEIXIAN.items()}
    rows = []
    for name in classes:
        if name in coco_of:
            rows.append((COCO80.index(coco_of[name]), 0.0))
        elif name in LOOKALIKES:
            rows.append((COCO80.index(LOOKALIKES[name]), NEW_CLASS_BIAS))
        else:
            raise DualHeadError(f"no COCO row to start class {name!r} from")
    return rows


def branch_checkpoint(
    coco_pt: str | Path, out: str | Path, width: int = BRANCH_WIDTH, held: tuple[str, ...] = ()
) -> Path:
    """An Ultralytics checkpoint of yolov8n with feixian's classes as its outputs and a class branch `width`
    wide, started from COCO's rows of the same or a look-alike class (`source_rows`). At width 64 it is
    yolov8n.yaml's own network for 11 classes (v15's), so Ultralytics' trainer can train it whole. `held`: COCO
    classes (feixian names) whose own rows follow feixian's as extra outputs named `held_name` (training.coco_rows);
    at width 80 they score exactly as in yolov8n."""
    import copy

    import torch
    from torch import nn
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    coco, _ = load_checkpoint(str(coco_pt), device="cpu")
    coco = coco.float()
    if len(coco.names) != len(COCO80):
        raise DualHeadError(f"{coco_pt}: expected a COCO checkpoint with 80 classes, got {len(coco.names)}")
    coco_width = coco.model[-1].cv3[0][0].conv.out_channels
    if not 1 <= width <= coco_width:
        raise DualHeadError(f"a class branch {width} wide: it starts from COCO's, so 1 to {coco_width} channels")
    coco_of = {ours: theirs for theirs, ours in COCO_TO_FEIXIAN.items()}
    unknown = [c for c in held if c not in coco_of]
    if unknown:
        raise DualHeadError(f"no COCO row to hold for {unknown}: COCO gives {sorted(coco_of)}")
    names = CLASSES + tuple(held_name(c) for c in held)
    cfg = copy.deepcopy(coco.yaml)
    cfg["nc"] = len(names)
    model = DetectionModel(cfg, nc=len(names), verbose=False)
    head = model.model[-1]
    widths = [seq[0].conv.in_channels for seq in head.cv3]
    head.cv3 = nn.ModuleList(
        nn.Sequential(Conv(w, width, 3), Conv(width, width, 3), nn.Conv2d(width, len(names), 1)) for w in widths
    )
    state = {k: v for k, v in coco.state_dict().items() if model.state_dict()[k].shape == v.shape}
    model.load_state_dict(state, strict=False)
    rows = source_rows(CLASSES) + [(COCO80.index(coco_of[c]), 0.0) for c in held]
    with torch.no_grad():
        for theirs, ours in zip(coco.model[-1].cv3, head.cv3, strict=True):
            _narrow_class_branch(theirs, ours, torch.tensor([r for r, _ in rows]), torch.tensor([o for _, o in rows]))
    model.names = dict(enumerate(names))
    model.args = {}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {}, "date": None, "version": "feixian-dual-branch"}, out)
    return out


def branch_from_dual(coco_pt: str | Path, dual_onnx: str | Path, out: str | Path) -> Path:
    """The trained branch of an exported dual detector, back as a checkpoint `export_dual` takes: a new fusion
    rule (`fuse_scores`) is then one export away, and a later training run can start from it.

    The export holds the branch's convolutions with their batch norms folded in (`branch.S.L.conv.weight`,
    ...), so they go into a checkpoint whose branch is folded the same way; the shared COCO layers stay as
    `branch_checkpoint` copies them, which `dual_module`'s frozen-weights guard checks."""
    import torch
    from ultralytics.nn.modules import Conv
    from ultralytics.utils.torch_utils import fuse_conv_and_bn

    weights = _initializers(dual_onnx, "branch.")
    if not weights:
        raise DualHeadError(f"{dual_onnx}: no branch weights in it; is it a dual-head export?")
    out = Path(out)
    ckpt = torch.load(branch_checkpoint(coco_pt, out), weights_only=False)
    head = ckpt["model"].model[-1].cv3
    for m in head.modules():
        if isinstance(m, Conv) and hasattr(m, "bn"):
            m.conv = fuse_conv_and_bn(m.conv, m.bn)
            delattr(m, "bn")
            m.forward = m.forward_fuse
    try:
        head.load_state_dict(weights)
    except RuntimeError as e:
        raise DualHeadError(f"{dual_onnx}: its branch does not fit a {BRANCH_WIDTH}-wide one: {e}") from e
    torch.save(ckpt, out)
    return out


def head_from_dual(dual_onnx: str | Path, out: str | Path) -> Path | None:
    """The narrow COCO branch levels of an export made with them (`export_dual(coco_head=...)`), saved as
    `save_head` saves them; None where the export holds COCO's own 80-class branch at every level."""
    weights = _initializers(dual_onnx, "coco_classes.")
    levels = tuple(
        sorted(int(k.split(".")[0]) for k, w in weights.items() if k.count(".") == 2 and k.endswith(".2.weight"))
    )
    if not levels:
        return None
    narrow = {k: w for k, w in weights.items() if int(k.split(".")[0]) in levels}
    head = empty_head(
        [int(narrow[f"{i}.0.conv.weight"].shape[1]) for i in levels], int(narrow[f"{levels[0]}.0.conv.weight"].shape[0])
    )
    try:
        head.load_state_dict(
            {f"{levels.index(int(k.split('.')[0]))}.{k.split('.', 1)[1]}": w for k, w in narrow.items()}
        )
    except RuntimeError as e:
        raise DualHeadError(f"{dual_onnx}: its narrow COCO branch does not load: {e}") from e
    return save_head(head, levels, Path(out), {"recovered_from": Path(dual_onnx).name})


def _initializers(onnx_path: str | Path, prefix: str) -> dict:
    """The weights of an ONNX graph named `prefix`..., as torch tensors keyed by the rest of the name."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    return {
        i.name[len(prefix) :]: torch.from_numpy(numpy_helper.to_array(i).copy())
        for i in model.graph.initializer
        if i.name.startswith(prefix)
    }


def kept_channels(last, mid, width1: int, width2: int):
    """Which hidden channels of a class branch (conv `mid`'s weights (hidden2, hidden1, 3, 3), then the 1x1
    rows `last` (outputs, hidden2, 1, 1)) a narrower copy keeps: the `width2` the outputs lean on most, then the
    `width1` those lean on most; each sorted."""
    import torch

    keep2 = torch.sort(torch.argsort(last.abs().sum(dim=(0, 2, 3)), descending=True)[:width2]).values
    keep1 = torch.sort(torch.argsort(mid[keep2].abs().sum(dim=(0, 2, 3)), descending=True)[:width1]).values
    return keep1, keep2


def _narrow_class_branch(theirs, ours, rows, offset) -> None:
    """Copy COCO's class branch (conv, conv, 1x1 to 80 classes; 80 channels wide) into ours (`BRANCH_WIDTH`
    wide, `rows` outputs). The hidden channels kept are those the copied rows lean on most, last layer first."""
    last = theirs[2].weight[rows]  # (classes, hidden2, 1, 1)
    keep1, keep2 = kept_channels(last, theirs[1].conv.weight, ours[0].conv.out_channels, ours[1].conv.out_channels)
    _copy_conv(theirs[0], ours[0], out_idx=keep1, in_idx=None)
    _copy_conv(theirs[1], ours[1], out_idx=keep2, in_idx=keep1)
    ours[2].weight.copy_(last[:, keep2])
    ours[2].bias.copy_(theirs[2].bias[rows] + offset)


def _copy_conv(src, dst, out_idx, in_idx) -> None:
    """An Ultralytics Conv (conv + batch norm) restricted to output channels `out_idx` and input `in_idx`."""
    w = src.conv.weight[out_idx]
    dst.conv.weight.copy_(w if in_idx is None else w[:, in_idx])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst.bn, name).copy_(getattr(src.bn, name)[out_idx])
    # a Conv made after its model's weight init has torch's eps (1e-5), not Ultralytics' (1e-3): it would scale
    # every copied channel a little off COCO's own
    dst.bn.eps = src.bn.eps


def frozen_layers() -> list:
    """What Ultralytics' `freeze` names: backbone, neck and the box branch (shared with COCO's classes, so a
    box found for a chair stays the one yolov8n draws); only the new class branch learns."""
    return [*range(HEAD_LAYER), f"{HEAD_LAYER}.cv2"]


def train_branch(init: Path, data: Path, run_dir: Path, device: str, hours: float, seed: int):
    """Train the new class branch of `init` (from `branch_checkpoint`) on `data`; returns the last checkpoint."""
    from ultralytics import YOLO
    from ultralytics.models.yolo.detect import DetectionTrainer

    class BranchTrainer(DetectionTrainer):
        """Trains the checkpoint's own network: Ultralytics would rebuild it from its YAML, at the default width."""

        def get_model(self, cfg=None, weights=None, verbose=True):
            return weights

    from training.train import _train_on_every_core

    _train_on_every_core()
    model = YOLO(str(init), task="detect")
    model.train(
        trainer=BranchTrainer,
        data=str(data),
        epochs=30,
        time=hours,
        imgsz=640,
        batch=16,
        workers=2,
        seed=seed,
        deterministic=True,
        device=device,
        amp=False,  # its check fetches a reference model over the network
        plots=False,  # plotting fetches a font over the network
        val=False,
        freeze=frozen_layers(),
        close_mosaic=1,
        warmup_epochs=0.5,
        cache=True,
        project=str(run_dir.parent.resolve()),
        name=run_dir.name,
        exist_ok=True,
    )
    return Path(model.trainer.last)


# rows of the truck states the branch alone judges
STATE_ROWS = tuple(CLASSES.index(c) for c in ("truck_dirty", "truck_uncovered"))
# COCO's rows of the classes it gives feixian, in `COCO_TO_FEIXIAN`'s order, and the rows of all the others
KNOWN_ROWS = tuple(COCO80.index(c) for c in COCO_TO_FEIXIAN)
FOREIGN_ROWS = tuple(i for i in range(len(COCO80)) if i not in KNOWN_ROWS)
SUMMARY_ROWS = len(KNOWN_ROWS) + 1  # what fusion reads of COCO: its known classes and its best foreign one


def coco_summary(coco):
    """All `fuse_scores` reads of COCO's (batch, 80, anchors) scores: the rows of the classes feixian knows
    (`KNOWN_ROWS`), then the best of the others, (batch, `SUMMARY_ROWS`, anchors). Logits or probabilities
    alike (the sigmoid keeps the order), so it is also the target a narrower COCO branch learns
    (training.narrow_coco_head)."""
    import torch

    return torch.cat([coco[:, list(KNOWN_ROWS)], coco[:, list(FOREIGN_ROWS)].amax(1, keepdim=True)], 1)


def fusion_buffers() -> dict:
    """What `fuse_scores` reads besides the scores: `summary_rows` (classes,), each feixian class's row in
    `coco_summary` (0 where COCO gives none, weighted 0 by `supplied`); `supplied` and `is_truck`,
    (1, classes, 1) masks of the classes COCO gives and of the plain truck."""
    import torch

    known = list(COCO_TO_FEIXIAN.values())
    return {
        "summary_rows": torch.tensor([known.index(c) if c in known else 0 for c in CLASSES]),
        "supplied": torch.tensor([float(c in known) for c in CLASSES]).view(1, -1, 1),
        "is_truck": torch.tensor([float(c == "truck") for c in CLASSES]).view(1, -1, 1),
    }


def fuse_scores(summary, ours, summary_rows, supplied, is_truck):
    """feixian's class scores (batch, classes, anchors) from COCO's `coco_summary` and the branch's scores, both
    after the sigmoid, by the rule of the module docstring; the other arguments are `fusion_buffers()`.

    >>> import torch
    >>> coco = torch.zeros(1, 80, 2)
    >>> coco[0, COCO80.index("pizza"), 0], coco[0, COCO80.index("chair"), 1] = 0.9, 0.6
    >>> ours = torch.zeros(1, len(CLASSES), 2)
    >>> ours[0, CLASSES.index("table")] = 0.8  # the branch calls both anchors a table
    >>> fused = fuse_scores(coco_summary(coco), ours, **fusion_buffers())
    >>> [round(v, 2) for v in fused[0, CLASSES.index("table")].tolist()]  # not on COCO's pizza
    [0.08, 0.8]
    >>> round(fused[0, CLASSES.index("chair"), 1].item(), 2)  # COCO's chair stands
    0.6
    """
    known_scores, best_foreign = summary[:, :-1], summary[:, -1:]
    # COCO's best class is one feixian knows (its argmax over all 80 rows, ties going to the known one)
    known = (known_scores.amax(1, keepdim=True) >= best_foreign).to(summary.dtype)
    foreign = (1 - known) * best_foreign  # COCO's confidence in a class feixian does not know
    ours = ours * (1 - supplied * foreign)
    # COCO's truck counts only as far as the branch doubts a dirty or uncovered state
    trust = 1 - is_truck * ours[:, list(STATE_ROWS)].amax(1, keepdim=True)
    return ours.maximum(known_scores[:, summary_rows] * supplied * known * trust)


def _fused_conv(c_in: int, c_out: int):
    """An Ultralytics Conv (3x3, SiLU) with its batch norm folded into the convolution, as `model.fuse()` leaves
    the teacher's."""
    from torch import nn
    from ultralytics.nn.modules import Conv

    m = Conv(c_in, c_out, 3)
    m.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=True)
    delattr(m, "bn")
    m.forward = m.forward_fuse
    return m


def empty_head(in_channels: list[int], width: int):
    """Narrow COCO branch levels (conv, conv, 1x1 to `SUMMARY_ROWS`), `width` channels wide, one for each of
    `in_channels`, for `dual_module` to read `coco_summary` from in place of yolov8n's 80-class branch."""
    from torch import nn

    return nn.ModuleList(
        nn.Sequential(_fused_conv(c, width), _fused_conv(width, width), nn.Conv2d(width, SUMMARY_ROWS, 1))
        for c in in_channels
    )


def save_head(head, levels: tuple[int, ...], out: Path, facts: dict) -> Path:
    """Write narrow COCO branch levels (`head[k]` stands in at Detect level `levels[k]`) with what `load_head`
    needs to rebuild them and `facts` about their training."""
    import torch

    saved = {
        "levels": list(levels),
        "in_channels": [level[0].conv.in_channels for level in head],
        "width": head[0][0].conv.out_channels,
        "state_dict": head.state_dict(),
        "facts": facts,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, out)
    return out


def load_head(path: str | Path):
    """The narrow COCO branch levels `save_head` wrote (training.narrow_coco_head trains them) in eval mode, and
    the Detect levels they stand in at."""
    import torch

    try:
        saved = torch.load(str(path), weights_only=False)
        head = empty_head(saved["in_channels"], saved["width"])
        head.load_state_dict(saved["state_dict"])
        levels = tuple(saved["levels"])
    except (OSError, KeyError, RuntimeError) as e:
        raise DualHeadError(f"{path}: not a narrow COCO head saved by training.narrow_coco_head: {e}") from e
    return head.eval(), levels


def summary_head(coco_cv3, coco_head: str | Path | None = None):
    """Per Detect level, what gives `coco_summary`'s logits: the narrow level of `coco_head` where it has one,
    else COCO's own 80-class level followed by `coco_summary`."""
    from torch import nn

    class Summary(nn.Module):
        def forward(self, x):
            return coco_summary(x)

    narrow, levels = load_head(coco_head) if coco_head is not None else ([], ())
    return nn.ModuleList(
        narrow[levels.index(i)] if i in levels else nn.Sequential(level, Summary()) for i, level in enumerate(coco_cv3)
    )


def neck_features(coco, x) -> list:
    """The features yolov8n's Detect layer reads of input `x` (strides 8, 16, 32): its backbone and neck run."""
    saved = []
    for m in coco.model[:-1]:
        if m.f != -1:
            x = saved[m.f] if isinstance(m.f, int) else [x if j == -1 else saved[j] for j in m.f]
        x = m(x)
        saved.append(x if m.i in coco.save else None)
    return [saved[j] for j in coco.model[-1].f]


def per_anchor(heads, feats, rows: int):
    """(batch, rows, anchors): each level's head on its features, flattened and joined as Detect joins them."""
    import torch

    bs = feats[0].shape[0]
    return torch.cat([h(f).view(bs, rows, -1) for h, f in zip(heads, feats, strict=True)], -1)


def decoded_boxes(det, feats: list):
    """(batch, 4, anchors): the boxes Ultralytics' Detect layer `det` (in export mode) decodes from its box branch
    on the neck features `feats`."""
    return det._get_decode_boxes({"boxes": per_anchor(det.cv2, feats, 4 * det.reg_max), "feats": feats})


def last_axis_dfl(reg_max: int = 16):
    """Ultralytics' DFL (a box side as the expectation of a softmax over `reg_max` bins), with the softmax taken over
    the last axis. Ultralytics' own takes it over axis 1 of (batch, bins, 4, anchors), which ONNX Runtime runs by
    copying the tensor transposed: 3.2 ms a 640x384 call of v18's 46 on one thread, against about 0.8 here.

    >>> import torch
    >>> from ultralytics.nn.modules.block import DFL
    >>> x = torch.randn(1, 64, 100)
    >>> bool(torch.allclose(last_axis_dfl()(x), DFL(16)(x), atol=1e-5))
    True
    """
    import torch
    from torch import nn

    class LastAxisDFL(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("bins", torch.arange(reg_max, dtype=torch.float32))

        def forward(self, x):
            b, _, a = x.shape
            # a weighted sum, not a MatMul with the bins: ONNX Runtime ran that as slowly as the transposed softmax
            return (x.view(b, 4, reg_max, a).transpose(2, 3).softmax(-1) * self.bins).sum(-1)

    return LastAxisDFL()


def dual_module(coco_pt: str | Path, branch_pt: str | Path, coco_head: str | Path | None = None):
    """The torch module `export_dual` writes: yolov8n with the trained branch beside its class branch, or with
    `coco_head` (training.narrow_coco_head) in place of COCO's 80-class branch where given."""
    import torch
    from torch import nn
    from ultralytics.nn.tasks import load_checkpoint

    coco, _ = load_checkpoint(str(coco_pt), device="cpu")
    branch, _ = load_checkpoint(str(branch_pt), device="cpu")
    coco, branch = coco.float().eval(), branch.float().eval()
    shared = [k for k in coco.state_dict() if not k.startswith(f"model.{HEAD_LAYER}.cv3")]
    theirs = branch.state_dict()
    drifted = [k for k in shared if k in theirs and not torch.equal(coco.state_dict()[k], theirs[k])]
    if drifted:
        raise DualHeadError(f"{branch_pt}: the branch changed shared COCO weights ({drifted[:3]} ...): not frozen")
    coco.fuse(verbose=False)
    branch.fuse(verbose=False)

    class Dual(nn.Module):
        def __init__(self):
            super().__init__()
            self.coco, self.branch = coco, branch.model[-1].cv3
            self.coco_classes = summary_head(coco.model[-1].cv3, coco_head)
            for name, tensor in fusion_buffers().items():
                self.register_buffer(name, tensor)

        def forward(self, x):
            feats = neck_features(self.coco, x)
            boxes = decoded_boxes(self.coco.model[-1], feats)
            summary = per_anchor(self.coco_classes, feats, SUMMARY_ROWS).sigmoid()
            new_scores = per_anchor(self.branch, feats, len(CLASSES)).sigmoid()
            scores = fuse_scores(summary, new_scores, self.summary_rows, self.supplied, self.is_truck)
            return torch.cat([boxes, scores], 1)

    det = coco.model[-1]
    det.export, det.format, det.dynamic = True, "onnx", True
    det.dfl = last_axis_dfl(det.reg_max)
    return Dual().eval()


def export_dual(
    coco_pt: str | Path,
    branch_pt: str | Path,
    out: str | Path,
    metadata: dict[str, str],
    coco_head: str | Path | None = None,
) -> Path:
    """Write the dual-head detector (`dual_module`) as ONNX (`export_module`)."""
    description = "feixian dual-head detector: yolov8n's COCO classes kept, a trained branch for the rest"
    return export_module(dual_module(coco_pt, branch_pt, coco_head), out, metadata, description)


def export_module(module, out: str | Path, metadata: dict[str, str], description: str) -> Path:
    """Write a torch detector whose output is Ultralytics' (batch, 4 + len(CLASSES), anchors) as ONNX (dynamic
    height and width, as `feixian train` exports) with Ultralytics' metadata (names, stride, imgsz),
    `description` and `metadata`."""
    import torch

    from training.train import stamp_onnx_metadata

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            torch.zeros(1, 3, 640, 640),
            str(out),
            opset_version=17,
            input_names=["images"],
            output_names=["output0"],
            dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 2: "anchors"}},
            dynamo=False,
        )
    stamp_onnx_metadata(
        out,
        {
            "names": str(dict(enumerate(CLASSES))),
            "stride": "32",
            "imgsz": "[640, 640]",
            "task": "detect",
            "batch": "1",
            "description": description,
            **metadata,
        },
    )
    return out


def gflops(module, imgsz: int = 640) -> float:
    """Billions of floating-point operations of one `imgsz`-square image through `module` (THOP's count)."""
    import thop
    import torch

    macs, _ = thop.profile(module, inputs=(torch.zeros(1, 3, imgsz, imgsz),), verbose=False)
    return 2 * macs / 1e9


def export_run(args: argparse.Namespace) -> dict:
    """The dual detector of the branch trained in `args.run_dir`, exported to `args.out`, and the summary the
    model card reads (training.card), also written to `args.summary`."""
    from training.train import _epochs_trained, _training_seconds, dataset_fingerprint, hardware

    run_dir = Path(args.run_dir)
    last = run_dir / "weights" / "last.pt"
    epochs = _epochs_trained(run_dir)
    fingerprint = dataset_fingerprint(args.data)
    flops = gflops(dual_module(args.coco, last))
    meta = {
        "feixian_model": Path(args.out).stem,
        "feixian_version": args.version,
        "data_fingerprint": fingerprint,
        "train_seed": str(args.seed),
        "train_epochs": str(epochs),
        "gflops": f"{flops:.3f}",
    }
    export_dual(args.coco, last, args.out, meta)
    summary = {
        "onnx": str(args.out),
        "best_pt": str(last),
        "train_seconds": round(_training_seconds(run_dir), 1),
        "gflops": round(flops, 3),
        "data_fingerprint": fingerprint,
        "epochs": epochs,
        "device": args.device,
        "hardware": hardware(args.device),
        "imgsz": 640,
        "seed": args.seed,
        "model_yaml": f"yolov8n.yaml (COCO, whole) + a {BRANCH_WIDTH}-wide class branch for feixian's classes",
        "weights": args.coco,
        "note": "only the new class branch trained: backbone, neck, box branch and COCO's classes frozen",
    }
    Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("init", help="the branch checkpoint to train")
    a.add_argument("--coco", default="../shared/models/yolov8n.pt")
    a.add_argument("--out", required=True)
    a.add_argument("--width", type=int, default=BRANCH_WIDTH, help="hidden channels of the class branch (<= 80)")
    r = sub.add_parser("recover", help="the branch checkpoint of an exported dual detector (branch_from_dual)")
    r.add_argument("--coco", default="../shared/models/yolov8n.pt")
    r.add_argument("--dual", required=True, help="ONNX written by export_dual")
    r.add_argument("--out", required=True)
    r.add_argument("--export", help="also export it again, with this module's fusion rule, to this ONNX")
    r.add_argument(
        "--coco-head",
        help="export with this narrow COCO branch (training.narrow_coco_head); default: the one --dual holds, if any",
    )
    r.add_argument("--version", default="dev")
    for step, what in (("train", "train the branch, then export"), ("export", "export a trained branch's run")):
        t = sub.add_parser(step, help=what + " the dual detector and its summary")
        t.add_argument("--coco", default="../shared/models/yolov8n.pt")
        t.add_argument("--data", required=True, help="feixian-class YOLO dataset (feixian real-data)")
        t.add_argument("--run-dir", required=True, help="Ultralytics run folder")
        t.add_argument("--out", required=True, help="ONNX to write")
        t.add_argument("--summary", required=True, help="JSON summary for the model card")
        t.add_argument("--version", default="dev")
        t.add_argument("--device", default="cpu")
        t.add_argument("--seed", type=int, default=0)
        if step == "train":
            t.add_argument("--init", required=True, help="checkpoint from `init`")
            t.add_argument("--hours", type=float, default=0.5)
    args = p.parse_args(argv)
    try:
        if args.step == "init":
            print(branch_checkpoint(args.coco, args.out, args.width))
        elif args.step == "recover":
            print(branch := branch_from_dual(args.coco, args.dual, args.out))
            if args.export:
                import onnx

                # the branch's training facts (data fingerprint, seed, epochs) stay true of the new export
                meta = {m.key: m.value for m in onnx.load(args.dual).metadata_props}
                meta |= {"feixian_model": Path(args.export).stem, "feixian_version": args.version}
                meta["branch_of"] = Path(args.dual).name
                # an export made with a narrow COCO branch is made again with it, unless another one is given
                head = args.coco_head or head_from_dual(args.dual, Path(args.out).with_suffix(".coco-head.pt"))
                if head:
                    meta["coco_head"] = Path(head).name
                meta["gflops"] = f"{gflops(dual_module(args.coco, branch, head)):.3f}"
                print(export_dual(args.coco, branch, args.export, meta, head))
        else:
            if args.step == "train":
                train_branch(Path(args.init), Path(args.data), Path(args.run_dir), args.device, args.hours, args.seed)
            print(json.dumps(export_run(args), indent=2))
    except (DualHeadError, FileNotFoundError) as e:
        print(f"dual_head: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
