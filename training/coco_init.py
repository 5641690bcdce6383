"""A feixian detector that starts from a COCO checkpoint and keeps what COCO taught it.

The network and every weight come from the checkpoint (Ultralytics' `yolov8n.pt`); only the last layer of
each class branch changes size, from COCO's 80 outputs to feixian's classes. A feixian class that COCO knows
(`training.real_sets.COCO_TO_FEIXIAN`) takes COCO's row for it, so on the first step the model already finds
people, cars, trucks, chairs, tables and umbrellas as well as COCO's model does. A class only the generator
teaches starts from the row of a look-alike (`LOOKALIKES`: a dirty truck from the truck) with its bias lowered,
so it begins rare and unsure instead of random.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from pipeline.taxonomy import CLASSES
from training.real_sets import COCO80, COCO_TO_FEIXIAN

LOOKALIKES: dict[str, str] = {
    "truck_dirty": "truck",
    "truck_uncovered": "truck",
    "stall": "umbrella",  # a canopy over a counter
    "cart": "bicycle",
    "goods": "suitcase",
}
NEW_CLASS_BIAS = -3.0  # logit offset of a look-alike's row: about a twentieth of its odds at the start


def source_rows(classes: tuple[str, ...] = CLASSES) -> list[tuple[int, float]]:
    """For each of `classes`, the COCO row it starts from and the bias offset.

    >>> rows = source_rows()
    >>> COCO80[rows[CLASSES.index("table")][0]], COCO80[rows[CLASSES.index("truck_dirty")][0]]
    ('dining table', 'truck')
    """
    coco_of = {ours: coco for coco, ours in COCO_TO_FEIXIAN.items()}
    rows = []
    for name in classes:
        if name in coco_of:
            rows.append((COCO80.index(coco_of[name]), 0.0))
        elif name in LOOKALIKES:
            rows.append((COCO80.index(LOOKALIKES[name]), NEW_CLASS_BIAS))
        else:
            raise ValueError(f"no COCO row to start class {name!r} from")
    return rows


def checkpoint_from_coco(coco_pt: str | Path, out: str | Path, classes: tuple[str, ...] = CLASSES) -> Path:
    """Write an Ultralytics checkpoint of the COCO network with `classes` as its outputs (see module doc)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    coco, _ = load_checkpoint(str(coco_pt), device="cpu")
    coco = coco.float()
    if len(coco.names) != len(COCO80):
        raise ValueError(f"{coco_pt}: expected a COCO checkpoint with 80 classes, got {len(coco.names)}")
    cfg = copy.deepcopy(coco.yaml)
    cfg["nc"] = len(classes)
    model = DetectionModel(cfg, nc=len(classes), verbose=False)
    state = {k: v for k, v in coco.state_dict().items() if model.state_dict()[k].shape == v.shape}
    model.load_state_dict(state, strict=False)
    rows = source_rows(classes)
    index = torch.tensor([r for r, _ in rows])
    offset = torch.tensor([o for _, o in rows])
    with torch.no_grad():
        for theirs, ours in zip(coco.model[-1].cv3, model.model[-1].cv3, strict=True):
            _narrow_class_branch(theirs, ours, index, offset)
    model.names = dict(enumerate(classes))
    model.args = {}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {}, "date": None, "version": "feixian-coco-init"}, out)
    return out


def _narrow_class_branch(theirs, ours, rows, offset) -> None:
    """Copy COCO's class branch (conv, conv, 1x1 to 80 classes) into ours, which is narrower: Ultralytics
    sizes the branch's hidden width by the class count (80 for COCO, 64 for feixian's 11). The hidden
    channels kept are those the copied rows lean on most, last layer first."""
    import torch

    last = theirs[2].weight[rows]  # (classes, hidden2, 1, 1)
    keep2 = torch.argsort(last.abs().sum(dim=(0, 2, 3)), descending=True)[: ours[1].conv.out_channels]
    keep2 = torch.sort(keep2).values
    mid = theirs[1].conv.weight[keep2]  # (kept2, hidden1, 3, 3)
    keep1 = torch.argsort(mid.abs().sum(dim=(0, 2, 3)), descending=True)[: ours[0].conv.out_channels]
    keep1 = torch.sort(keep1).values
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coco", default="../shared/models/yolov8n.pt")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if not Path(args.coco).is_file():
        print(f"coco_init: checkpoint not found: {args.coco}", file=sys.stderr)
        return 2
    print(checkpoint_from_coco(args.coco, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
