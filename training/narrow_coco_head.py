"""A narrower COCO class branch for the dual-head detector, taught by yolov8n's own one (distillation).

The dual-head detector (training.dual_head) keeps yolov8n's 80-class branch (two 3x3 convolutions 80 channels
wide at each of three levels, then 80 outputs) only to read seven numbers an anchor from it: the scores of the six
COCO classes feixian takes and the best score of the other 74 (`training.dual_head.coco_summary`). That branch
costs more than the whole class branch of the generated-only v15 (64 wide), which is most of why v18 runs slower
than v15. Here a branch `width` wide (32 by default: 3x3 convolutions cost width squared) with those seven outputs
learns them from the 80-wide one, on the same frozen neck features, over the images the dual detector's own
branch trained on (`feixian real-data`: the train parts of the real photo sets, rendered items composited onto
them and generated streets). No label is needed: the teacher's logits at every anchor are the targets.

It starts from the teacher itself: the hidden channels the seven outputs lean on most, the known classes' rows,
and the mean of the foreign rows for the seventh. Then it trains on cached features (the neck runs once an
image, through ONNX Runtime), so an epoch over 3,000 images takes minutes on two CPU cores.

    python -m training.narrow_coco_head train --data data/train-real/data/data.yaml --out coco-head.pt
    python -m training.dual_head recover --dual models/feixian-street-v18.onnx --out branch.pt \\
        --coco-head coco-head.pt --export models/feixian-street-v19.onnx

>>> from training.dual_head import SUMMARY_ROWS
>>> SUMMARY_ROWS  # person, car, truck, chair, dining table, umbrella, and the best of the rest
7
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from training.dual_head import (
    FOREIGN_ROWS,
    KNOWN_ROWS,
    SUMMARY_ROWS,
    DualHeadError,
    coco_summary,
    decoded_boxes,
    empty_head,
    kept_channels,
    load_head,
    neck_features,
    per_anchor,
    save_head,
)

DEFAULT_WIDTH = 32
# Only the stride-8 level is narrowed: it holds four times the anchors of stride 16, so 57 % of the 80-wide
# branch's work; a 32-wide copy of all three levels lost a third of COCO's chairs and tables (larger objects,
# found at strides 16 and 32), where COCO's own levels stay.
NARROW_LEVELS = (0,)
POSITIVE_WEIGHT = 10.0  # an anchor's loss counts 1 + this x the teacher's score: the few anchors on objects decide


def narrow_head(teacher_cv3, width: int = DEFAULT_WIDTH, levels: tuple[int, ...] = NARROW_LEVELS):
    """`width`-wide copies of the `levels` of yolov8n's fused 80-class branch `teacher_cv3`, with
    `SUMMARY_ROWS` outputs: the known classes' rows and the mean of the foreign ones; the hidden channels kept
    are those the outputs lean on most, last layer first."""
    import torch

    head = empty_head([teacher_cv3[i][0].conv.in_channels for i in levels], width)
    with torch.no_grad():
        for theirs, ours in zip((teacher_cv3[i] for i in levels), head, strict=True):
            w, b = theirs[2].weight, theirs[2].bias
            last_w = torch.cat([w[list(KNOWN_ROWS)], w[list(FOREIGN_ROWS)].mean(0, keepdim=True)])
            last_b = torch.cat([b[list(KNOWN_ROWS)], b[list(FOREIGN_ROWS)].amax().view(1)])
            keep1, keep2 = kept_channels(last_w, theirs[1].conv.weight, width, width)
            ours[0].conv.weight.copy_(theirs[0].conv.weight[keep1])
            ours[0].conv.bias.copy_(theirs[0].conv.bias[keep1])
            ours[1].conv.weight.copy_(theirs[1].conv.weight[keep2][:, keep1])
            ours[1].conv.bias.copy_(theirs[1].conv.bias[keep2])
            ours[2].weight.copy_(last_w[:, keep2])
            ours[2].bias.copy_(last_b)
    return head


def _teacher_onnx(coco_pt: str | Path, out: Path) -> Path:
    """yolov8n's neck features, its `coco_summary` logits and its decoded boxes (x, y, w, h at every anchor) as one
    ONNX graph, to cache them fast."""
    import torch
    from torch import nn
    from ultralytics.nn.tasks import load_checkpoint

    coco, _ = load_checkpoint(str(coco_pt), device="cpu")
    coco = coco.float().eval()
    coco.fuse(verbose=False)

    det = coco.model[-1]
    det.export, det.format, det.dynamic = True, "onnx", True

    class Teacher(nn.Module):
        def forward(self, x):
            feats = neck_features(coco, x)
            return (*feats, coco_summary(per_anchor(det.cv3, feats, 80)), decoded_boxes(det, feats))

    with torch.no_grad():
        torch.onnx.export(
            Teacher().eval(),
            torch.zeros(1, 3, 640, 640),
            str(out),
            opset_version=17,
            input_names=["images"],
            output_names=["p3", "p4", "p5", "summary", "boxes"],
            dynamic_axes={"images": {2: "h", 3: "w"}},
            dynamo=False,
        )
    return out


def teacher_session(coco_pt: str | Path, threads: int = 2):
    """An ONNX Runtime session of the teacher graph (`_teacher_onnx`) on `threads` threads."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return ort.InferenceSession(str(_teacher_onnx(coco_pt, Path(tmp) / "teacher.onnx")), opts)


def letterboxed(images: list[Path]):
    """Each distinct image of `images` once, with a progress bar: its path, the image as read (BGR) and as the
    detector feeds it (Ultralytics' LetterBox, padded to the stride)."""
    import cv2
    from tqdm import tqdm
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox((640, 640), auto=True, stride=32)
    for path in tqdm(dict.fromkeys(images), desc="features", mininterval=10):
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise DualHeadError(f"{path}: unreadable image")
        yield path, bgr, letterbox(image=bgr)


def blob(img: np.ndarray) -> np.ndarray:
    """A letterboxed BGR image as the network's input: (1, 3, h, w) RGB in [0, 1]."""
    return np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def cache(coco_pt: str | Path, images: list[Path], levels: tuple[int, ...] = NARROW_LEVELS, threads: int = 2) -> list:
    """For each image, letterboxed as the detector feeds it, the neck features of `levels` (float16) and the
    teacher's summary logits at their anchors. An image listed more than once is cached once and listed again."""
    session = teacher_session(coco_pt, threads)
    done: dict[Path, tuple] = {}
    for path, _, img in letterboxed(images):
        *feats, summary = session.run(["p3", "p4", "p5", "summary"], {"images": blob(img)})
        bounds = np.cumsum([0] + [f.shape[2] * f.shape[3] for f in feats])
        anchors = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in levels])
        done[path] = (*(feats[i].astype(np.float16) for i in levels), summary[:, :, anchors].astype(np.float16))
    return [done[path] for path in images]


def _batches(samples: list[tuple], size: int, rng: np.random.Generator) -> list[list[int]]:
    """Indices of `samples` in shuffled batches of one input shape each."""
    by_shape: dict[tuple, list[int]] = {}
    for i, s in enumerate(samples):
        by_shape.setdefault(s[0].shape, []).append(i)
    batches = []
    for members in by_shape.values():
        members = list(rng.permutation(members))
        batches += [members[k : k + size] for k in range(0, len(members), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _stack(samples: list[tuple], idx: list[int]):
    import torch

    return [torch.from_numpy(np.concatenate([samples[i][k] for i in idx])).float() for k in range(len(samples[0]))]


def loss_of(head, batch) -> object:
    """Weighted binary cross-entropy of the head's logits against the teacher's scores at every anchor."""
    from torch.nn.functional import binary_cross_entropy_with_logits

    *feats, summary = batch
    target = summary.sigmoid()
    weight = 1 + POSITIVE_WEIGHT * target.amax(1, keepdim=True)
    logits = per_anchor(head, feats, SUMMARY_ROWS)
    total = binary_cross_entropy_with_logits(logits, target, weight=weight.expand_as(target), reduction="sum")
    return total / (weight.sum() * SUMMARY_ROWS)


def fidelity(head, samples: list[tuple]) -> dict:
    """How closely the head's scores follow the teacher's on `samples`: over anchors where either scores at least
    0.2, the mean and 99th percentile of the difference, and the share of anchors either side of the 0.25 mark
    (about the detector's threshold) on which they disagree."""
    import torch

    diffs, flips, considered = [], 0, 0
    with torch.no_grad():
        for i in range(len(samples)):
            *feats, summary = _stack(samples, [i])
            t = summary.sigmoid()
            s = per_anchor(head, feats, SUMMARY_ROWS).sigmoid()
            live = (t >= 0.2) | (s >= 0.2)
            diffs.append((s - t).abs()[live].numpy())
            flips += int(((t >= 0.25) != (s >= 0.25))[live].sum())
            considered += int(live.sum())
    d = np.concatenate(diffs) if diffs else np.zeros(0)
    return {
        "anchors": considered,
        "mean_abs_diff": round(float(d.mean()), 4) if d.size else None,
        "p99_abs_diff": round(float(np.percentile(d, 99)), 4) if d.size else None,
        "disagree_at_0.25": round(flips / considered, 4) if considered else None,
    }


def fit(
    module,
    samples: list[tuple],
    epochs: int,
    loss: Callable[[list[int]], object],
    lr: float,
    weight_decay: float,
    *,
    batch: int = 16,
    seed: int = 0,
    log: Callable[[str], None] = print,
    after_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Train `module` on cached `samples` with AdamW and a one-cycle schedule, `loss(indices)` being the loss of
    the batch of those samples; returns each epoch's mean loss. `after_epoch(epoch)` runs after each epoch
    (numbered from 1), with the module back in training mode after."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(_batches(samples, batch, rng))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    history = []
    for epoch in range(epochs):
        module.train()
        losses, started = [], time.monotonic()
        for idx in _batches(samples, batch, rng):
            value = loss(idx)
            opt.zero_grad()
            value.backward()
            opt.step()
            sched.step()
            losses.append(float(value.detach()))
        history.append(float(np.mean(losses)))
        log(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.5f} ({time.monotonic() - started:.0f} s)")
        if after_epoch:
            after_epoch(epoch + 1)
    module.train()
    return history


def train(
    head, samples: list[tuple], epochs: int, lr: float = 2e-3, batch: int = 16, seed: int = 0, log=print
) -> list[float]:
    """Distil `head` on cached `samples` (`fit`); returns each epoch's mean loss."""
    return fit(
        head,
        samples,
        epochs,
        lambda idx: loss_of(head, _stack(samples, idx)),
        lr,
        1e-4,
        batch=batch,
        seed=seed,
        log=log,
    )


def training_images(data_yaml: Path, part: str = "train") -> list[Path]:
    """The images of a data.yaml's `part` (train or val): a `feixian real-data` list, each image as often as it
    is listed (real photos twice), or a folder of images (`feixian synth`)."""
    import yaml
    from ultralytics.data.utils import IMG_FORMATS

    spec = yaml.safe_load(data_yaml.read_text())
    listing = Path(spec["path"]) / spec[part]
    if listing.is_dir():
        return sorted(p for p in listing.iterdir() if p.suffix[1:].lower() in IMG_FORMATS)
    return [Path(line.strip()) for line in listing.read_text().splitlines() if line.strip()]


def held_out_images(data_root: Path) -> list[Path]:
    """The test parts of the real photo sets: what the distilled head is checked on, never trained on."""
    from training.real_sets import REAL_SETS

    return [img for s in REAL_SETS.values() for img in s.images(data_root, "test")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    t = sub.add_parser("train", help="distil the narrow head and save it")
    t.add_argument("--coco", default="../shared/models/yolov8n.pt")
    t.add_argument("--data", required=True, help="data.yaml of `feixian real-data`")
    t.add_argument("--data-root", default="../shared/data", help="holds real/ (held-out parts checked)")
    t.add_argument("--out", required=True, help="head checkpoint to write")
    t.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--limit", type=int, help="at most this many training images")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", help="go on training this head (save_head's file) instead of starting from COCO's")
    args = p.parse_args(argv)
    try:
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        torch.set_num_threads(2)
        coco, _ = load_checkpoint(str(args.coco), device="cpu")
        coco = coco.float().eval()
        coco.fuse(verbose=False)
        images = training_images(Path(args.data))[: args.limit]
        held_out = held_out_images(Path(args.data_root))
        started = time.monotonic()
        samples, checks = cache(args.coco, images), cache(args.coco, held_out)
        if args.init:
            head, levels = load_head(args.init)
            if levels != NARROW_LEVELS:
                raise DualHeadError(f"{args.init}: narrows levels {levels}, not {NARROW_LEVELS}")
        else:
            head = narrow_head(coco.model[-1].cv3, args.width)
        before = fidelity(head.eval(), checks)
        print(json.dumps({"held_out_before": before}), flush=True)
        history = train(head, samples, args.epochs, seed=args.seed, log=lambda m: print(m, flush=True))
        facts = {
            "teacher": Path(args.coco).name,
            "levels": list(NARROW_LEVELS),
            "width": head[0][0].conv.out_channels,
            "init": args.init,
            "epochs": args.epochs,
            "training_images": len(images),
            "data": str(args.data),
            "seed": args.seed,
            "loss_by_epoch": [round(v, 5) for v in history],
            "held_out_images": len(held_out),
            "held_out_before": before,
            "held_out_after": fidelity(head.eval(), checks),
            "train_after": fidelity(head, samples[:: max(1, len(samples) // 300)]),
            "seconds": round(time.monotonic() - started, 1),
        }
        save_head(head, NARROW_LEVELS, Path(args.out), facts)
        print(json.dumps(facts, indent=2))
    except (DualHeadError, FileNotFoundError) as e:
        print(f"narrow_coco_head: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
