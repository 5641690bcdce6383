"""Train and measure the item classifier that `pipeline.item_check.ItemCheck` runs behind the detector.

Its outputs are `pipeline.item_check.OUTPUTS`: none, then the six occupation item classes. What it learns from a
`feixian real-data` set (generated streets, rendered items pasted onto real photos, and the real training photos):

- each item class: the labelled boxes of that class, rendered and real (the real photos' tables, chairs and
  umbrellas; a class's real boxes take up to `REAL_SHARE` of its draws), and the detector's own boxes of any item
  class that overlap one of them (IoU >= 0.5), since those are the crops the stage will be shown;
- none: the detector's item boxes that overlap no labelled item (IoU < 0.3), the labelled boxes of people and
  vehicles, and random boxes on the real photos, none of which shows a stall, cart or goods
  (`../shared/data/real/SOURCES.md`).

The network, augmentation and training loop are the truck-state classifier's (`training.truck_state`).

    python -m training.item_check train --data data/train-real/data --detector models/feixian-street-v18.onnx \\
        --out models/feixian-itemcheck-v2.onnx
    python -m training.item_check eval --model models/feixian-itemcheck-v2.onnx \\
        --detector models/feixian-street-v18.onnx --heldout data/heldout --real data/train-real/data/test/*

>>> labelled_boxes("5 0.5 0.5 0.2 0.4\\n0 0.5 0.5 0.5 0.5\\n7 0.1 0.1 0.01 0.01\\n", 100, 200)
[('stall', (80.0, 30.0, 120.0, 70.0)), ('person', (50.0, 25.0, 150.0, 75.0))]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import supervision as sv

from pipeline.crop_stages import crop_box
from pipeline.item_check import GENERATED_ONLY, ITEMS, OUTPUTS, ItemCheck
from pipeline.taxonomy import CLASSES
from training.real_dataset import REAL_TRAIN
from training.truck_state import MIN_BOX_PX, _read, _region, build_model, export, fit, image_label_pairs

NONE = OUTPUTS.index("none")
MINED_CONF = 0.05  # the detector's boxes mined for training from this score up: the stage judges weak ones too
MINED_PER_IMAGE = 6  # at most this many of them an image, drawn at random
OTHERS_PER_IMAGE = 2  # labelled people and vehicles taken as "none", an image
RANDOM_PER_PHOTO = 3
HIT_IOU, MISS_IOU = 0.5, 0.3  # a mined box on a labelled item, or on none; in between it is left out
# the share of draws: each item class alike; "none" split between its kinds
MIX = {"item": 0.6 / len(ITEMS), "mined": 0.25, "others": 0.05, "random": 0.1}
REAL_SHARE = 0.3  # at most this share of an item class's draws are its real boxes, few as they are
# yolov8n layers 0-5 (0.15 M weights, 0.6 MB): as sure as layers 0-6 on the held-out items and real footage here
BACKBONE_LAYERS = 6


class ItemCheckError(ValueError):
    """A dataset or model given to train or measure the item classifier is unusable."""


def labelled_boxes(label_text: str, height: int, width: int) -> list[tuple[str, tuple[float, ...]]]:
    """(class, box in pixels) of one YOLO label file, less the boxes too small to judge."""
    out = []
    for line in label_text.splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        cx, cy, bw, bh = (float(v) for v in parts[1:])
        box = ((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height)
        if box[2] - box[0] >= MIN_BOX_PX and box[3] - box[1] >= MIN_BOX_PX:
            out.append((CLASSES[int(parts[0])], box))
    return out


class _Crops:
    """Training regions with their box, output index, kind (a `MIX` key) and whether the photo is real."""

    def __init__(self):
        self.regions, self.boxes, self.labels, self.kinds, self.real = [], [], [], [], []

    def add(self, image: np.ndarray, box, label: int, kind: str, real: bool) -> None:
        region, inner = _region(image, tuple(float(v) for v in box))
        self.regions.append(region)
        self.boxes.append(inner)
        self.labels.append(label)
        self.kinds.append(kind)
        self.real.append(real)

    def weights(self) -> np.ndarray:
        """Draw probabilities: `MIX` per kind (per class for items), real items capped at `REAL_SHARE`."""
        labels, kinds, real = np.array(self.labels), np.array(self.kinds), np.array(self.real)
        weight = np.zeros(len(labels))
        for k in range(1, len(OUTPUTS)):
            members = labels == k
            rendered, photo = members & ~real, members & real
            if photo.any() and rendered.any():
                weight[photo] = MIX["item"] * REAL_SHARE / photo.sum()
                weight[rendered] = MIX["item"] * (1 - REAL_SHARE) / rendered.sum()
            elif members.any():
                weight[members] = MIX["item"] / members.sum()
        for kind in ("mined", "others", "random"):
            members = (labels == NONE) & (kinds == kind)
            if members.any():
                weight[members] = MIX[kind] / members.sum()
        return weight / weight.sum()


def _gather(data: Path, detector, rng: np.random.Generator) -> _Crops:
    crops = _Crops()
    roots = [(data / REAL_TRAIN, True), (data / "composites", False), (data / "synth" / "images" / "train", False)]
    for root, real in roots:
        if not root.exists():
            continue
        for image_path, label_path in image_label_pairs(root):
            image = _read(image_path)
            h, w = image.shape[:2]
            labelled = labelled_boxes(label_path.read_text(), h, w)
            items = [(OUTPUTS.index(n), b) for n, b in labelled if n in ITEMS]
            others = [b for n, b in labelled if n not in ITEMS]
            for label, box in items:
                crops.add(image, box, label, "item", real)
            for i in rng.permutation(len(others))[:OTHERS_PER_IMAGE]:
                crops.add(image, others[i], NONE, "others", real)
            found = detector.detect(image)
            mined = found.xyxy[np.isin(found.data["class_name"], ITEMS)] if len(found) else np.zeros((0, 4))
            if len(mined):
                iou = sv.box_iou_batch(mined, np.array([b for _, b in items], np.float32).reshape(-1, 4))
                best = iou.max(axis=1, initial=0.0)
                for i in rng.permutation(len(mined))[:MINED_PER_IMAGE]:
                    if best[i] >= HIT_IOU:
                        crops.add(image, mined[i], items[int(iou[i].argmax())][0], "mined", real)
                    elif best[i] < MISS_IOU:
                        crops.add(image, mined[i], NONE, "mined", real)
            if real:
                for _ in range(RANDOM_PER_PHOTO):
                    bw, bh = rng.uniform(0.05, 0.35) * w, rng.uniform(0.05, 0.35) * h
                    x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                    crops.add(image, (x, y, x + bw, y + bh), NONE, "random", real)
    return crops


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
    crops = _gather(data, OnnxDetector(str(detector_path), MINED_CONF, 0.5), rng)
    labels = np.array(crops.labels, dtype=np.int64)
    counts = Counter(labels.tolist())
    if any(counts[k] < 10 for k in range(len(OUTPUTS))):
        raise ItemCheckError(f"{data}: too few crops of some output to train on: " + _named(counts))
    model = build_model(weights, layers, outputs=len(OUTPUTS))
    started = time.monotonic()
    fit(model, crops.regions, crops.boxes, labels, crops.weights(), steps, batch, rng)
    export(model, out)
    real = Counter(label for label, r in zip(crops.labels, crops.real, strict=True) if r)
    return {
        "crops": {OUTPUTS[k]: counts[k] for k in range(len(OUTPUTS))},
        "real_crops": {OUTPUTS[k]: real[k] for k in range(len(OUTPUTS))},
        "none_kinds": dict(Counter(k for k, label in zip(crops.kinds, labels, strict=True) if label == NONE)),
        "detector": str(detector_path),
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "start": str(weights),
        "backbone_layers": layers,
        "data": str(data),
    }


def _named(counts: Counter) -> str:
    return ", ".join(f"{OUTPUTS[k]} {counts[k]}" for k in range(len(OUTPUTS)))


def _overlap(box: np.ndarray, others) -> float:
    """The largest IoU of `box` with any of `others` (0 for none)."""
    others = np.asarray(others, np.float32).reshape(-1, 4)
    return float(sv.box_iou_batch(box[None].astype(np.float32), others).max(initial=0.0))


def measure(
    model: Path, detector_path: Path, heldout: Path, real_sets: list[Path], videos: list[Path], conf: float = 0.2
) -> dict:
    """What the check (its defaults) does to the detector's item boxes at the shipped confidence `conf`: on held-out
    generated images, which of the boxes on a labelled item of their class (IoU >= 0.5) it keeps and names rightly,
    and which of the others it keeps; on real photos and video that hold no stall, cart or goods, how many such
    boxes a frame."""
    from feixian.detect import frames_of
    from pipeline.crop_stages import StagedDetector
    from pipeline.detector import OnnxDetector

    detector = OnnxDetector(str(detector_path), conf, 0.5)
    check = ItemCheck(str(model), 0.5)
    checked = StagedDetector(detector, [check])
    hits, named, kept_hits, others, kept_others = Counter(), Counter(), Counter(), Counter(), Counter()
    for image_path, label_path in image_label_pairs(heldout):
        image = _read(image_path)
        found = detector.detect(image)
        names = np.asarray(found.data["class_name"]) if len(found) else np.array([], str)
        is_item = np.isin(names, ITEMS)
        if not is_item.any():
            continue
        probs = check.classifier.probabilities([crop_box(image, b) for b in found.xyxy[is_item]])
        truth = labelled_boxes(label_path.read_text(), *image.shape[:2])
        after = checked.detect(image)
        for box, name, p in zip(found.xyxy[is_item], names[is_item], probs, strict=True):
            if _overlap(box, [b for n, b in truth if n == name]) >= HIT_IOU:
                hits[name] += 1
                named[name] += OUTPUTS[int(p.argmax())] == name
                kept_hits[name] += _overlap(box, after.xyxy[after.data["class_name"] == name]) > 0.999
            else:
                others[name] += 1
                kept_others[name] += _overlap(box, after.xyxy[after.data["class_name"] == name]) > 0.999

    def per_frame(frames) -> dict:
        n, before, kept = 0, Counter(), Counter()
        for image in frames:
            n += 1
            for tally, found in ((before, detector.detect(image)), (kept, checked.detect(image))):
                tally.update(x for x in (found.data["class_name"] if len(found) else []) if x in GENERATED_ONLY)
        return {
            "frames": n,
            "stall_cart_goods_per_frame_before": round(sum(before.values()) / max(1, n), 4),
            "stall_cart_goods_per_frame_after": round(sum(kept.values()) / max(1, n), 4),
        }

    real = {s.name: per_frame(_read(p) for p in sorted((s / "images").glob("*"))) for s in real_sets}
    real |= {v.name: per_frame(f for _, f in frames_of(v, 10)) for v in videos}

    def share(part: Counter, whole: Counter) -> dict:
        return {k: round(part[k] / whole[k], 4) for k in ITEMS if whole[k]}

    return {
        "detector": str(detector_path),
        "conf": conf,
        "heldout": {
            "boxes_on_items": dict(hits),
            "named_rightly": share(named, hits),
            "kept": share(kept_hits, hits),
            "other_boxes": dict(others),
            "other_kept": share(kept_others, others),
        },
        "real": real,
    }


def card(name: str, train_report: dict, measured: dict, command: str, size_bytes: int) -> str:
    """The model card: what the check is, how it was made, and what it does on images it never saw."""
    held = measured["heldout"]
    crops, real = train_report["crops"], train_report["real_crops"]
    lines = [
        f"# {name}",
        "",
        "The item check (`pipeline.item_check`): a second look at each occupation item box the detector finds, on",
        "its 96x96 crop. It drops the stall, cart and goods boxes its classifier doubts are any item, and re-scores",
        "every item box by the classifier's score of its class (a table, chair or umbrella box only upwards).",
        f"Backbone: the first {train_report['backbone_layers']} layers of Ultralytics' COCO `yolov8n.pt`, then a pool",
        f"and a linear layer to {len(OUTPUTS)} outputs ({', '.join(OUTPUTS)}), trained by `training.item_check`.",
        "",
        "| fact | value |",
        "|---|---|",
        f"| ONNX size | {size_bytes / 1e6:.2f} MB |",
        "| crops (real ones in brackets) | " + ", ".join(f"{k} {crops[k]} ({real[k]})" for k in OUTPUTS) + " |",
        f"| 'none' crops by kind | {', '.join(f'{k} {v}' for k, v in train_report['none_kinds'].items())} "
        f"(mined: {Path(train_report['detector']).name}'s boxes on no labelled item) |",
        f"| training | {train_report['steps']} batches of {train_report['batch']}, seed {train_report['seed']}, "
        f"{train_report['minutes']} min on 2 CPU cores |",
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        f"## What it does to the detector's item boxes ({Path(measured['detector']).name}, conf {measured['conf']})",
        "",
        "Held-out generated images, by the detector's class: its boxes on a labelled item of that class (IoU >= 0.5),",
        "how many the classifier names so and how many the check keeps; its other boxes of the class, how many it",
        "keeps (a stall, cart or goods box leaves when doubted or re-scored under the threshold; a table, chair or",
        "umbrella box is only ever raised).",
        "",
        "| class | boxes on an item of it | named rightly | kept | other boxes | other kept |",
        "|---|---|---|---|---|---|",
    ]
    for k in ITEMS:
        lines.append(
            f"| {k} | {held['boxes_on_items'].get(k, 0)} | {held['named_rightly'].get(k, 0):.1%} | "
            f"{held['kept'].get(k, 0):.1%} | {held['other_boxes'].get(k, 0)} | {held['other_kept'].get(k, 0):.1%} |"
        )
    lines += [
        "",
        "Real photos and video that hold no stall, cart or goods (the real sets' test parts, which no training saw):",
        "",
        "| footage | frames | stall, cart and goods boxes a frame: detector | with the check |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['frames']} | {v['stall_cart_goods_per_frame_before']:.3f} | "
        f"{v['stall_cart_goods_per_frame_after']:.3f} |"
        for k, v in measured["real"].items()
    ]
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.item_check", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune on a feixian real-data set and export ONNX")
    t.add_argument("--data", type=Path, required=True, help="a `feixian real-data` output folder")
    t.add_argument("--detector", type=Path, required=True, help="the detector whose item boxes are mined")
    t.add_argument("--weights", type=Path, default=Path("../shared/models/yolov8n.pt"))
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layers", type=int, default=BACKBONE_LAYERS, help="yolov8n layers kept as the backbone")
    m = sub.add_parser("eval", help="what the check does on held-out generated images and real footage")
    m.add_argument("--model", type=Path, required=True)
    m.add_argument("--detector", type=Path, required=True)
    m.add_argument("--heldout", type=Path, required=True, help="a `feixian synth` folder never trained on")
    m.add_argument(
        "--real", type=Path, nargs="*", default=[], help="YOLO folders of real photos with no stall, cart or goods"
    )
    m.add_argument(
        "--video", type=Path, nargs="*", default=[], help="real videos with no stall, cart or goods (every 10th frame)"
    )
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
