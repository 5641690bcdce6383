"""One network trained whole for feixian's classes, with COCO's own rows of its real classes kept beside them.

The v19 and v20 trials (docs/experiments.md) trained yolov8n whole for feixian's 11 classes: v15's speed and the
generated bar met, but coco128's real chairs and tables forgotten, because one class row had to answer to
thousands of rendered chairs and to COCO's few dozen real ones at once. Here each class COCO gives (`HELD`) gets
a second row, started as COCO's own (the class branch kept 80 wide, as yolov8n's, so at the start it scores
exactly as yolov8n): the labels train feixian's 11 rows and never the held ones (class weight 0), and the held
rows learn only the teacher's scores, at every anchor of every image (`HeldRowsDistillation`). The export reads
a class as the higher of its two rows (`fuse_held`), so its output is the usual (batch, 4 + 11, anchors).

    python -m training.coco_rows init --out data/rows/init.pt
    python -m training.coco_rows data --data data/train-real/data/data.yaml --out data/rows/data.yaml
    python -m training.coco_rows train --init data/rows/init.pt --data data/rows/data.yaml \\
        --run-dir data/rows/run --hours 1.2 --gain 2
    python -m training.coco_rows export --checkpoint data/rows/run/weights/last.pt --out data/rows/v21.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml
from ultralytics.utils.torch_utils import unwrap_model

from pipeline.taxonomy import CLASSES
from training.coco_scores import KEPT, CocoScoreDistillation, CocoScoreTrainer, soft_target_loss
from training.dual_head import DualHeadError, held_name
from training.real_sets import COCO80, COCO_TO_FEIXIAN

HELD = KEPT  # person, car, chair, table, umbrella: trucks split by state, which COCO's one truck row would blur
NAMES = CLASSES + tuple(held_name(c) for c in HELD)
WIDTH = 80  # yolov8n's own class branch width, so its rows start exact
# (student row in NAMES, teacher row in COCO80) of each held row
HELD_ROWS: tuple[tuple[int, int], ...] = tuple(
    (NAMES.index(held_name(ours)), COCO80.index(theirs)) for theirs, ours in COCO_TO_FEIXIAN.items() if ours in HELD
)


def fuse_held(scores, names: tuple[str, ...] = NAMES):
    """feixian's (batch, len(CLASSES), anchors) scores from a held-rows network's (batch, len(names), anchors):
    a class scores the higher of its own row and its held one.

    >>> import torch
    >>> s = torch.zeros(1, len(NAMES), 1)
    >>> s[0, CLASSES.index("chair")], s[0, NAMES.index("coco_chair")], s[0, CLASSES.index("stall")] = 0.2, 0.7, 0.4
    >>> [round(v, 1) for v in fuse_held(s)[0, :, 0].tolist()] == [0.7 if c == "chair" else 0.4 if c == "stall"
    ...     else 0.0 for c in CLASSES]
    True
    """
    if tuple(names[: len(CLASSES)]) != CLASSES:
        raise DualHeadError(f"a held-rows network starts with feixian's classes {CLASSES}, got {names}")
    rows = [names.index(held_name(c)) if held_name(c) in names else i for i, c in enumerate(CLASSES)]
    return scores[:, : len(CLASSES)].maximum(scores[:, rows])


def rows_data(data_yaml: str | Path, out: str | Path) -> Path:
    """A copy of a feixian dataset's YAML that names the held rows too (no label uses them), with its paths made
    absolute so that it may live anywhere."""
    data_yaml = Path(data_yaml).resolve()
    spec = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    names = spec["names"].values() if isinstance(spec["names"], dict) else spec["names"]
    if tuple(names) != CLASSES:
        raise DualHeadError(f"{data_yaml}: expected feixian's classes {CLASSES}, got {tuple(names)}")
    spec["path"] = str((data_yaml.parent / spec.get("path", ".")).resolve())
    spec["names"] = dict(enumerate(NAMES))
    spec["nc"] = len(NAMES)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def held_rows_loss(student, teacher):
    """Binary cross-entropy of the held rows of the student's logits (images, len(NAMES), anchors) against the
    teacher's probabilities (from its (images, 80, anchors) logits) at every anchor (`soft_target_loss`); feixian's
    own rows are left to the labels."""
    ours = [s for s, _ in HELD_ROWS]
    theirs = [t for _, t in HELD_ROWS]
    return soft_target_loss(student[:, ours], teacher.detach()[:, theirs].float().sigmoid())


class HeldRowsDistillation(CocoScoreDistillation):
    """Ultralytics' feature distillation plus `held_rows_loss`; a module-level class, so the checkpoints
    Ultralytics pickles load again."""

    def kept_loss(self, student, teacher_scores, batch):
        return held_rows_loss(student["scores"], teacher_scores)


class HeldRowsTrainer(CocoScoreTrainer):
    """Trains the checkpoint's own network (Ultralytics would rebuild it from its YAML, its class branch 64 wide),
    the labels weighing on feixian's rows only, the held rows on the teacher's scores (`HeldRowsDistillation`)."""

    distillation = HeldRowsDistillation

    def get_model(self, cfg=None, weights=None, verbose=True):
        if weights is None or tuple(weights.names.values()) != NAMES:
            raise DualHeadError(f"train from a checkpoint of `init`, whose outputs are {NAMES}")
        return weights

    def set_class_weights(self):
        model = unwrap_model(self.model)
        model = getattr(model, "student_model", model)
        model.class_weights = torch.tensor([float(n in CLASSES) for n in NAMES], device=self.device)


# v19's settings (docs/experiments.md); `train`'s `hyp` overrides any of them
SETTINGS = {
    "epochs": 30,
    "imgsz": 640,
    "batch": 16,
    "workers": 2,
    "seed": 0,
    "device": "cpu",
    "close_mosaic": 1,
    "warmup_epochs": 0.5,
    "cache": True,
}


def train(init: Path, data: Path, run_dir: Path, teacher: str, gain: float, hours: float, hyp: dict | None = None):
    """Train `init` (from `init`) whole on `data` (from `rows_data`) for `hours`, with `SETTINGS` but for `hyp`
    (Ultralytics' own arguments); returns the last checkpoint."""
    from ultralytics import YOLO

    # by its importable name: run as `python -m training.coco_rows`, this module is __main__, and checkpoints
    # that pickled __main__'s distillation wrapper would load nowhere else
    from training.coco_rows import HeldRowsTrainer
    from training.train import _train_on_every_core

    _train_on_every_core()
    model = YOLO(str(init), task="detect")
    model.train(
        trainer=type("HeldRowsTrainer", (HeldRowsTrainer,), {"gain": gain}),
        data=str(data),
        time=hours,
        deterministic=True,
        amp=False,  # its check fetches a reference model over the network
        plots=False,  # plotting fetches a font over the network
        val=False,
        distill_model=teacher,
        project=str(run_dir.parent.resolve()),
        name=run_dir.name,
        exist_ok=True,
        **(SETTINGS | (hyp or {})),
    )
    return Path(model.trainer.last)


def rows_module(checkpoint: str | Path):
    """The torch module `export` writes: the checkpoint's network, its held rows folded in by `fuse_held`."""
    from torch import nn
    from ultralytics.nn.tasks import load_checkpoint

    from training.dual_head import decoded_boxes, last_axis_dfl, neck_features, per_anchor

    model, _ = load_checkpoint(str(checkpoint), device="cpu")
    # a checkpoint saved mid-run holds the distillation wrapper (its teacher stripped), one saved at the end the student
    model = getattr(model, "student_model", model).float().eval()
    names = tuple(model.names.values())
    model.fuse(verbose=False)
    det = model.model[-1]
    det.export, det.format, det.dynamic = True, "onnx", True
    det.dfl = last_axis_dfl(det.reg_max)

    class HeldRows(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            feats = neck_features(self.model, x)
            scores = fuse_held(per_anchor(det.cv3, feats, len(names)).sigmoid(), names)
            return torch.cat([decoded_boxes(det, feats), scores], 1)

    return HeldRows().eval()


def main(argv: list[str] | None = None) -> int:
    from training.dual_head import branch_checkpoint, export_module
    from training.train import TrainError, parse_hyp

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("init", help="yolov8n for feixian's classes plus COCO's held rows, its class branch 80 wide")
    a.add_argument("--coco", default="../shared/models/yolov8n.pt")
    a.add_argument("--out", required=True)
    d = sub.add_parser("data", help="a feixian dataset's YAML naming the held rows too")
    d.add_argument("--data", required=True)
    d.add_argument("--out", required=True)
    t = sub.add_parser("train", help="train an `init` checkpoint whole")
    t.add_argument("--init", required=True)
    t.add_argument("--data", required=True, help="YAML from `data`")
    t.add_argument("--run-dir", required=True, help="Ultralytics run folder")
    t.add_argument("--teacher", default="../shared/models/yolov8n.pt")
    t.add_argument("--gain", type=float, default=2.0, help="weight of the held rows' score loss")
    t.add_argument("--hours", type=float, default=1.0)
    t.add_argument("--hyp", action="append", default=[], metavar="KEY=VALUE", help="Ultralytics argument over SETTINGS")
    e = sub.add_parser("export", help="ONNX of a trained checkpoint, the held rows folded in")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--version", default="dev")
    args = p.parse_args(argv)
    try:
        if args.step == "init":
            print(branch_checkpoint(args.coco, args.out, WIDTH, HELD))
        elif args.step == "data":
            print(rows_data(args.data, args.out))
        elif args.step == "train":
            hyp = parse_hyp(args.hyp)
            print(train(Path(args.init), Path(args.data), Path(args.run_dir), args.teacher, args.gain, args.hours, hyp))
        else:
            meta = {"feixian_model": Path(args.out).stem, "feixian_version": args.version}
            description = "feixian detector: yolov8n trained whole, COCO's rows of its real classes held beside"
            print(export_module(rows_module(args.checkpoint), args.out, meta, description))
    except (DualHeadError, TrainError, FileNotFoundError) as e:
        print(f"coco_rows: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
