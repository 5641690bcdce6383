"""Train and measure the item classifier that `pipeline.item_check.ItemCheck` runs behind the detector.

Items (1): the stalls, carts and goods of a `feixian real-data` set, rendered in generated streets and pasted
onto real photos. Not items (0): what the detector itself boxes as a stall, cart or goods on the real photos of
that set's training parts (none shows one: `../shared/data/real/SOURCES.md`), and random boxes on those photos.
The network, augmentation and training loop are the truck-state classifier's (`training.truck_state`).

    python -m training.item_check train --data data/train-real/data --detector models/feixian-street-v18.onnx \\
        --out models/feixian-itemcheck-v1.onnx
    python -m training.item_check eval --model models/feixian-itemcheck-v1.onnx \\
        --detector models/feixian-street-v18.onnx --heldout data/train-real/heldout --data-root ../shared/data

>>> item_boxes("5 0.5 0.5 0.2 0.4\\n0 0.5 0.5 0.5 0.5\\n7 0.1 0.1 0.01 0.01\\n", 100, 200)
[(80.0, 30.0, 120.0, 70.0)]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.crop_stages import crop_box
from pipeline.item_check import CHECKED, ITEM, ItemCheck
from pipeline.taxonomy import CLASSES
from training.truck_state import (
    MIN_BOX_PX,
    _read,
    _region,
    build_model,
    export,
    fit,
    has_class,
    image_label_pairs,
)

CHECKED_IDS = frozenset(CLASSES.index(c) for c in CHECKED)
MINED_CONF = 0.1  # the detector's boxes on real photos mined as "not an item" from this score up
RANDOM_PER_PHOTO = 3
MIX = {"items": 0.5, "mined": 0.3, "random": 0.2}  # the share of each kind in every batch
# yolov8n layers 0-5 (0.15 M weights, 0.6 MB): as sure as layers 0-6 on the held-out items and real footage here
BACKBONE_LAYERS = 6


class ItemCheckError(ValueError):
    """A dataset or model given to train or measure the item classifier is unusable."""


def item_boxes(label_text: str, height: int, width: int) -> list[tuple[float, ...]]:
    """The stall, cart and goods boxes of one YOLO label file in pixels, less those too small to judge."""
    out = []
    for line in label_text.splitlines():
        parts = line.split()
        if len(parts) != 5 or int(parts[0]) not in CHECKED_IDS:
            continue
        cx, cy, bw, bh = (float(v) for v in parts[1:])
        box = ((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height)
        if box[2] - box[0] >= MIN_BOX_PX and box[3] - box[1] >= MIN_BOX_PX:
            out.append(box)
    return out


def _items(roots: list[Path]) -> list[tuple[np.ndarray, tuple[float, ...]]]:
    out = []
    for root in roots:
        for image_path, label_path in image_label_pairs(root):
            text = label_path.read_text()
            if not has_class(text, CHECKED_IDS):
                continue
            image = _read(image_path)
            out += [_region(image, box) for box in item_boxes(text, *image.shape[:2])]
    return out


def _not_items(photos: list[Path], detector, rng: np.random.Generator) -> tuple[list, list]:
    """(mined, random) regions on real photos that hold no item."""
    mined, random = [], []
    for path in photos:
        image = _read(path)
        h, w = image.shape[:2]
        found = detector.detect(image)
        mined += [
            _region(image, tuple(b)) for b, n in zip(found.xyxy, found.data["class_name"], strict=True) if n in CHECKED
        ]
        for _ in range(RANDOM_PER_PHOTO):
            bw, bh = rng.uniform(0.05, 0.35) * w, rng.uniform(0.05, 0.35) * h
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            random.append(_region(image, (x, y, x + bw, y + bh)))
    return mined, random


def train(
    data: Path,
    detector_path: Path,
    weights: Path,
    out: Path,
    steps: int,
    seed: int,
    batch: int = 64,
    layers: int = BACKBONE_LAYERS,
) -> dict:
    """Fine-tune on a `feixian real-data` set (see the module doc) and export to `out` (ONNX, softmax inside)."""
    import torch

    from pipeline.detector import OnnxDetector

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    items = _items([r for r in (data / "composites", data / "synth" / "images" / "train") if r.exists()])
    photos = sorted((data / "real-train" / "images").glob("*"))
    mined, random = _not_items(photos, OnnxDetector(str(detector_path), MINED_CONF, 0.5), rng)
    if len(items) < 10 or not photos:
        raise ItemCheckError(f"{data}: too few items ({len(items)}) or no real photos ({len(photos)}) to train on")
    kinds = {"items": items, "mined": mined, "random": random}
    regions = [r for part in kinds.values() for r, _ in part]
    boxes = [b for part in kinds.values() for _, b in part]
    labels = np.array([ITEM] * len(items) + [1 - ITEM] * (len(mined) + len(random)), dtype=np.int64)
    weight = np.concatenate([np.full(len(part), MIX[k] / len(part)) for k, part in kinds.items() if part])
    weight /= weight.sum()
    model = build_model(weights, layers, outputs=2)
    started = time.monotonic()
    fit(model, regions, boxes, labels, weight, steps, batch, rng)
    export(model, out)
    return {
        "items": len(items),
        "mined_from_detector": len(mined),
        "random_real": len(random),
        "detector": str(detector_path),
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "start": str(weights),
        "backbone_layers": layers,
        "data": str(data),
    }


def measure(model: Path, detector_path: Path, heldout: Path, real_sets: list[Path], videos: list[Path]) -> dict:
    """What the check keeps, at several thresholds, of the detector's stall, cart and goods boxes at the shipped
    confidence (0.2): on held-out generated images, those that are a labelled item (IoU >= 0.5) and those that
    are not; on real photos and video that hold none, how many a frame."""
    import supervision as sv

    from feixian.detect import frames_of
    from pipeline.detector import OnnxDetector

    thresholds = (0.3, 0.5, 0.7, 0.8)
    detector = OnnxDetector(str(detector_path), 0.2, 0.5)
    check = ItemCheck(str(model), 0.5)

    def scored(image):
        found = detector.detect(image)
        boxes = found.xyxy[np.isin(found.data["class_name"], CHECKED)]
        probs = check.classifier.probabilities([crop_box(image, b) for b in boxes])[:, ITEM]
        return boxes, probs

    true, false = [], []
    for image_path, label_path in image_label_pairs(heldout):
        image = _read(image_path)
        boxes, probs = scored(image)
        truth = item_boxes(label_path.read_text(), *image.shape[:2])
        iou = sv.box_iou_batch(boxes, np.array(truth, np.float32)).max(axis=1) if len(truth) and len(boxes) else None
        hit = iou >= 0.5 if iou is not None else np.zeros(len(boxes), bool)
        true += probs[hit].tolist()
        false += probs[~hit].tolist()

    def kept(probs: list[float]) -> dict:
        p = np.array(probs)
        return {str(t): round(float((p >= t).mean()), 4) if len(p) else None for t in thresholds}

    def per_frame(frames) -> dict:
        probs, n = [], 0
        for image in frames:
            n += 1
            probs += scored(image)[1].tolist()
        p = np.array(probs)
        return {"frames": n, "boxes_per_frame": round(len(p) / max(1, n), 4)} | {
            f"kept_per_frame_{t}": round(float((p >= t).sum()) / max(1, n), 4) for t in thresholds
        }

    real = {s.name: per_frame(_read(p) for p in sorted((s / "images").glob("*"))) for s in real_sets}
    real |= {v.name: per_frame(f for _, f in frames_of(v, 10)) for v in videos}
    return {
        "detector": str(detector_path),
        "heldout": {
            "item_boxes": len(true),
            "item_kept": kept(true),
            "other_boxes": len(false),
            "other_kept": kept(false),
        },
        "real": real,
    }


def card(name: str, train_report: dict, measured: dict, command: str, size_bytes: int) -> str:
    """The model card: what the check is, how it was made, and what it keeps of what it never saw."""
    held = measured["heldout"]
    lines = [
        f"# {name}",
        "",
        "The item check (`pipeline.item_check`): a second look at each stall, cart and goods box the detector",
        "finds, on its 96x96 crop; a box the classifier doubts (probability of an item under",
        "`model.item_check.min_confidence`) is dropped before tracking. Backbone: the first",
        f"{train_report['backbone_layers']} layers of Ultralytics' COCO `yolov8n.pt`, then a pool and a linear layer",
        "(item or not), trained by `training.item_check`.",
        "",
        "| fact | value |",
        "|---|---|",
        f"| ONNX size | {size_bytes / 1e6:.2f} MB |",
        f"| items (rendered, in generated streets and pasted onto real photos) | {train_report['items']} |",
        f"| not items: the detector's own stall, cart and goods boxes on real photos that hold none | "
        f"{train_report['mined_from_detector']} (from {Path(train_report['detector']).name}) |",
        f"| not items: random boxes on those real photos | {train_report['random_real']} |",
        f"| training | {train_report['steps']} batches of {train_report['batch']} (items half of each), seed "
        f"{train_report['seed']}, {train_report['minutes']} min on 2 CPU cores |",
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        f"## What it keeps of the detector's stall, cart and goods boxes ({Path(measured['detector']).name}, conf 0.2)",
        "",
        "| threshold | held-out generated: boxes on a labelled item | held-out generated: other boxes | "
        + " | ".join(f"real {k}: boxes a frame" for k in measured["real"])
        + " |",
        "|---" * (3 + len(measured["real"])) + "|",
        "| (none) | "
        + f"{held['item_boxes']} | {held['other_boxes']} | "
        + " | ".join(f"{v['boxes_per_frame']:.3f}" for v in measured["real"].values())
        + " |",
    ]
    for t, kept in held["item_kept"].items():
        real = " | ".join(f"{v[f'kept_per_frame_{t}']:.3f}" for v in measured["real"].values())
        lines.append(f"| {t} | {kept:.1%} kept | {held['other_kept'][t]:.1%} kept | {real} |")
    return "\n".join(lines + ["", "The real photos are the test parts of the real sets, which no training saw.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.item_check", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune on a feixian real-data set and export ONNX")
    t.add_argument("--data", type=Path, required=True, help="a `feixian real-data` output folder")
    t.add_argument("--detector", type=Path, required=True, help="the detector whose boxes on real photos are mined")
    t.add_argument("--weights", type=Path, default=Path("../shared/models/yolov8n.pt"))
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=250)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layers", type=int, default=BACKBONE_LAYERS, help="yolov8n layers kept as the backbone")
    m = sub.add_parser("eval", help="what the check keeps on held-out generated images and real footage")
    m.add_argument("--model", type=Path, required=True)
    m.add_argument("--detector", type=Path, required=True)
    m.add_argument("--heldout", type=Path, required=True, help="a `feixian synth` folder never trained on")
    m.add_argument("--real", type=Path, nargs="*", default=[], help="YOLO folders of real photos with no item")
    m.add_argument("--video", type=Path, nargs="*", default=[], help="real videos with no item (every 10th frame)")
    c = sub.add_parser("card", help="write the model card from the train and eval reports beside the model")
    c.add_argument("--name", required=True)
    c.add_argument("--model", type=Path, required=True, help="its .train.json and .eval.json lie beside it")
    c.add_argument("--reproduce", required=True, help="the command that reproduces the model")
    c.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "card":
        train_report, measured = (
            json.loads(args.model.with_suffix(s).read_text()) for s in (".train.json", ".eval.json")
        )
        args.out.write_text(card(args.name, train_report, measured, args.reproduce, args.model.stat().st_size))
        return 0
    try:
        if args.command == "train":
            report = train(args.data, args.detector, args.weights, args.out, args.steps, args.seed, layers=args.layers)
            args.out.with_suffix(".train.json").write_text(json.dumps(report, indent=2) + "\n")
        else:
            report = measure(args.model, args.detector, args.heldout, args.real, args.video)
    except ItemCheckError as e:
        print(f"item_check: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
