"""Train, export and measure the truck-state classifier that `pipeline.truck_state.TruckStateJudge` runs.

The network is the backbone of Ultralytics' COCO `yolov8n.pt` (its first layers, which already know real trucks from
real photos) with a global pool and one linear layer for the three states, fine-tuned on truck crops from a
`feixian real-data` set: rendered clean, dirty and uncovered trucks pasted onto real photos and in generated
streets, and every real truck of the real sets' training parts as clean (no real photo here shows a muck truck,
so real pixels teach the clean state and the rendered sprites, drawn clean too, teach the difference).

    python -m training.truck_state train --data data/r17 --out models/feixian-truckstate-v1.onnx
    python -m training.truck_state eval --model models/feixian-truckstate-v1.onnx --data data/dual/heldout

>>> box_crops_from_labels("0 0.5 0.5 0.2 0.4\\n2 0.5 0.5 0.5 0.5\\n", 100, 200)
[(0, (50.0, 25.0, 150.0, 75.0))]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from pipeline.crop_stages import CROP_SIZE, crop_box, to_blob
from pipeline.taxonomy import CLASSES
from pipeline.truck_state import STATES

STATE_OF_CLASS = {CLASSES.index(s): k for k, s in enumerate(STATES)}
MIN_BOX_PX = 12  # a truck lower or narrower than this shows no state to judge
REGION_CONTEXT = 0.3  # what is kept around a box, so training can jitter the crop within it
BACKBONE_LAYERS = 7  # yolov8n layers 0-6: stride 16, 128 channels, 0.35 M weights (1.4 MB)


class TruckStateError(ValueError):
    """A dataset or checkpoint given to train or measure the truck-state classifier is unusable."""


def box_crops_from_labels(text: str, height: int, width: int) -> list[tuple[int, tuple[float, ...]]]:
    """The truck boxes of one YOLO label file in pixels, as (state index, (x1, y1, x2, y2))."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 5 or int(parts[0]) not in STATE_OF_CLASS:
            continue
        cx, cy, bw, bh = (float(v) for v in parts[1:])
        box = ((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height)
        if box[2] - box[0] >= MIN_BOX_PX and box[3] - box[1] >= MIN_BOX_PX:
            out.append((STATE_OF_CLASS[int(parts[0])], box))
    return out


def image_label_pairs(root: Path) -> list[tuple[Path, Path]]:
    """Every image under `root` with its YOLO label file (…/images/… -> …/labels/….txt), following links."""
    pairs = []
    for image in sorted(root.rglob("*")):
        if image.suffix.lower() not in {".jpg", ".jpeg", ".png"} or "images" not in image.parts:
            continue
        parts = list(image.parts)
        parts[len(parts) - 1 - parts[::-1].index("images")] = "labels"
        label = Path(*parts).with_suffix(".txt")
        if label.is_file():
            pairs.append((image, label))
    return pairs


def labelled_trucks(roots: list[Path]) -> Iterator[tuple[np.ndarray, list[tuple[int, tuple[float, ...]]]]]:
    """Each image under `roots` that has judgeable trucks, with them (state index, box in pixels)."""
    for root in roots:
        for image_path, label_path in image_label_pairs(root):
            text = label_path.read_text()
            if not has_class(text, STATE_OF_CLASS):
                continue
            image = _read(image_path)
            truths = box_crops_from_labels(text, *image.shape[:2])
            if truths:
                yield image, truths


def collect(roots: list[Path]) -> tuple[list[np.ndarray], list[tuple[float, ...]], np.ndarray]:
    """Regions around every truck under `roots` (each with its box inside the region) and their states."""
    regions, boxes, states = [], [], []
    for image, truths in labelled_trucks(roots):
        for state, box in truths:
            region, inner = _region(image, box)
            regions.append(region)
            boxes.append(inner)
            states.append(state)
    return regions, boxes, np.array(states, dtype=np.int64)


def has_class(label_text: str, class_ids) -> bool:
    """Whether a YOLO label file names any of `class_ids` (read before the image, which most files spare)."""
    return any(line.split()[:1] and int(line.split()[0]) in class_ids for line in label_text.splitlines())


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise TruckStateError(f"{path}: cannot be read as an image")
    return image


def _region(image: np.ndarray, box: tuple[float, ...]) -> tuple[np.ndarray, tuple[float, ...]]:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * REGION_CONTEXT, (y2 - y1) * REGION_CONTEXT
    rx1, ry1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
    rx2, ry2 = min(w, int(x2 + mx) + 1), min(h, int(y2 + my) + 1)
    return image[ry1:ry2, rx1:rx2].copy(), (x1 - rx1, y1 - ry1, x2 - rx1, y2 - ry1)


def augment(region: np.ndarray, box: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """One training crop: the box moved and resized a little (a detector's box is never exact), mirrored at
    random, and the capture varied (exposure, colour cast, blur, noise, JPEG, sometimes an infrared grey)."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    jx1, jy1, jx2, jy2 = rng.uniform(-0.12, 0.12, 4) * (bw, bh, bw, bh)
    crop = crop_box(region, (x1 + jx1, y1 + jy1, x2 + jx2, y2 + jy2), context=float(rng.uniform(0.0, 0.2)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    img = crop.astype(np.float32)
    img = img * rng.uniform(0.5, 1.4) + rng.uniform(-30, 30)  # exposure
    img *= rng.uniform(0.85, 1.15, 3)  # white balance
    if rng.random() < 0.15:
        img[:] = img.mean(axis=2, keepdims=True)  # a camera's infrared night mode
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
    img += rng.normal(0, rng.uniform(0, 8), img.shape)
    crop = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        crop = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(crop)


def build_model(weights: Path, layers: int = BACKBONE_LAYERS, outputs: int = len(STATES)):
    """The first `layers` layers of yolov8n's COCO backbone with an `outputs`-class classifier on top (torch)."""
    import torch
    from ultralytics import YOLO

    if not weights.is_file():
        raise TruckStateError(f"starting checkpoint not found: {weights}")
    backbone = torch.nn.Sequential(*list(YOLO(str(weights)).model.model)[:layers])
    with torch.no_grad():
        channels = backbone(torch.zeros(1, 3, CROP_SIZE, CROP_SIZE)).shape[1]
    model = torch.nn.Sequential(
        backbone, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, outputs)
    )
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def train(
    data: Path,
    weights: Path,
    out: Path,
    epochs: int,
    seed: int,
    samples_per_epoch: int,
    batch: int = 64,
    layers: int = BACKBONE_LAYERS,
) -> dict:
    """Fine-tune on the truck crops of a `feixian real-data` set and export to `out` (ONNX, softmax inside)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    roots = [data / "real-train", data / "composites", data / "synth" / "images" / "train"]
    regions, boxes, states = collect([r for r in roots if r.exists()])
    counts = Counter(states.tolist())
    if any(counts[k] < 10 for k in range(len(STATES))):
        raise TruckStateError(f"{data}: too few trucks of some state to train on: {dict(counts)}")
    weight = np.array([1.0 / counts[s] for s in states])
    weight /= weight.sum()
    model = build_model(weights, layers)
    started = time.monotonic()
    fit(model, regions, boxes, states, weight, epochs * (samples_per_epoch // batch), batch, rng)
    export(model, out)
    return {
        "trucks": {STATES[k]: counts[k] for k in range(len(STATES))},
        "epochs": epochs,
        "samples_per_epoch": samples_per_epoch,
        "seed": seed,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "start": str(weights),
        "backbone_layers": layers,
        "data": str(data),
    }


def fit(model, regions, boxes, labels: np.ndarray, weight: np.ndarray, steps: int, batch: int, rng) -> None:
    """Train `model` for `steps` batches drawn with probabilities `weight` (so each class comes as often as the
    mix asks, whatever the set's counts), each crop augmented afresh (`augment`)."""
    import torch

    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    model.train()
    for step in range(steps):
        pick = rng.choice(len(labels), size=batch, p=weight)
        x = torch.from_numpy(to_blob([augment(regions[i], boxes[i], rng) for i in pick]))
        loss = loss_fn(model(x), torch.from_numpy(labels[pick]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 20 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps} loss {loss.item():.3f}", file=sys.stderr, flush=True)


def export(model, out: Path) -> None:
    """The classifier with its softmax as ONNX: input (N, 3, 96, 96) RGB in [0, 1], output (N, classes)."""
    import torch

    model.eval()
    wrapped = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        wrapped,
        torch.zeros(1, 3, CROP_SIZE, CROP_SIZE),
        str(out),
        input_names=["images"],
        output_names=["states"],
        dynamic_axes={"images": {0: "n"}, "states": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def measure(model: Path, roots: list[Path], min_confidence: float, detector: Path | None = None) -> dict:
    """On the labelled trucks under `roots`: the confusion matrix of the classifier (rows the truth, columns the
    judgement at `min_confidence`, an unsure one counting as a plain truck) and the share judged right per state;
    with `detector`, the same for that detector's own truck class on the same trucks (its truck-family box of
    IoU >= 0.5 with the truth, found at confidence 0.05; `missed` where there is none)."""
    from pipeline.detector import OnnxDetector
    from pipeline.truck_state import TruckStateJudge

    judge = TruckStateJudge(str(model), min_confidence)
    finder = OnnxDetector(str(detector), 0.05, 0.7) if detector else None
    stage, own = Counter(), Counter()
    for image, truths in labelled_trucks(roots):
        probs = judge.classifier.probabilities([crop_box(image, box) for _, box in truths])
        best = probs.argmax(axis=1)
        said = np.where(probs[np.arange(len(best)), best] >= min_confidence, best, 0)
        stage.update((STATES[t], STATES[j]) for (t, _), j in zip(truths, said, strict=True))
        if finder is not None:
            own.update(zip([STATES[t] for t, _ in truths], _detector_states(finder, image, truths), strict=True))
    result = {"min_confidence": min_confidence, "stage": _table(stage)}
    if finder is not None:
        result["detector"] = {"model": str(detector), **_table(own)}
    return result


def _detector_states(finder, image: np.ndarray, truths: list) -> list[str]:
    import supervision as sv

    found = finder.detect(image)
    family = np.isin(found.data["class_name"], STATES)
    if not family.any():
        return ["missed"] * len(truths)
    iou = sv.box_iou_batch(np.array([b for _, b in truths], np.float32), found.xyxy[family])
    names = found.data["class_name"][family]
    return [str(names[row.argmax()]) if row.max() >= 0.5 else "missed" for row in iou]


def _table(pairs: Counter) -> dict:
    truths = sorted({t for t, _ in pairs}, key=STATES.index)
    said = list(STATES) + (["missed"] if any(j == "missed" for _, j in pairs) else [])
    confusion = {t: {j: pairs[(t, j)] for j in said} for t in truths}
    right = {t: round(pairs[(t, t)] / max(1, sum(confusion[t].values())), 3) for t in truths}
    return {"confusion": confusion, "right": right}


def card(
    name: str,
    train_report: dict,
    stage: dict,
    real_trucks: dict,
    command: str,
    size_bytes: int,
    deployed: dict | None = None,
    alone: dict | None = None,
) -> str:
    """The model card: what the classifier is, how it was made, and how it judges trucks it never saw."""
    heldout = stage["stage"]
    lines = [
        f"# {name}",
        "",
        "The truck-state stage (`pipeline.truck_state`): judges each truck box's state on its crop, after the",
        "detector. Backbone: the first "
        f"{train_report['backbone_layers']} layers of Ultralytics' COCO `yolov8n.pt`, then a global pool and a linear",
        "layer for plain / dirty / uncovered; input a 96x96 letterboxed crop of the box with a tenth of its size",
        "around it; output three probabilities. Trained by `training.truck_state` on the trucks of a",
        "`feixian real-data` set: rendered trucks in generated streets and pasted onto real photos, and the real",
        "trucks of the real sets' training parts as plain.",
        "",
        "| fact | value |",
        "|---|---|",
        f"| ONNX size | {size_bytes / 1e6:.2f} MB |",
        f"| trucks trained on | {', '.join(f'{k} {v}' for k, v in train_report['trucks'].items())} |",
        f"| training | {train_report['epochs']} epochs of {train_report['samples_per_epoch']} crops (each state drawn "
        f"equally), seed {train_report['seed']}, {train_report['minutes']} min on 2 CPU cores |",
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        f"## Held-out generated trucks (seed 1001), judged at min_confidence {stage['min_confidence']}",
        "",
        "Rows: the truth; columns: the judgement (the stage's on the labelled box; the detector's own class on its",
        "box of IoU >= 0.5 found at confidence 0.05, `missed` where it has none).",
        "",
    ]
    detector_alone = f"detector alone ({Path(stage['detector']['model']).name})"
    for label, table in (("stage", heldout), (detector_alone, stage["detector"])):
        said = list(next(iter(table["confusion"].values())))
        lines += [f"**{label}**", "", "| truth | " + " | ".join(said) + " | right |", "|---" * (len(said) + 2) + "|"]
        for truth, row in table["confusion"].items():
            lines.append(f"| {truth} | " + " | ".join(str(row[j]) for j in said) + f" | {table['right'][truth]:.3f} |")
        lines.append("")
    real = real_trucks["stage"]["confusion"].get("truck", {})
    lines += [
        "## Real trucks it never saw (the test parts of the real sets: all plain)",
        "",
        f"{sum(real.values())} trucks: {', '.join(f'{k} {v}' for k, v in real.items())}.",
        "",
    ]
    if deployed is not None and alone is not None:
        lines += _deployed_section(deployed, alone)
    return "\n".join(lines)


def _dirty_rates(real: dict, model: str) -> dict[str, float]:
    """Dirty or uncovered truck boxes a frame of `model` on each real set's test part and each video."""
    places = {f"{name} (test part)": entry for name, entry in real["sets"].items()} | real["videos"]
    return {where: entry["models"][model]["footage"]["dirty_uncovered_per_frame"] for where, entry in places.items()}


def _deployed_section(deployed: dict, alone: dict) -> list[str]:
    """The deployed whole (the detector with its second looks, this stage among them: configs/default.yaml) beside
    the detector alone (its card's figures): held-out generated images and scenarios, and real footage."""
    det, events, real = deployed["detection"], deployed["events"]["families"]["vehicle"], deployed["real"]
    lines = [
        "## Deployed behind the detector with the item check (configs/default.yaml), beside the detector alone",
        "",
        "| measure (held out) | detector + second looks | detector alone |",
        "|---|---|---|",
    ]
    for c in STATES:
        lines.append(
            f"| AP50 {c}, generated images (seed 1001) | {det['per_class_ap50'][c]:.3f} | "
            f"{alone['detection']['per_class_ap50'][c]:.3f} |"
        )
    old = alone["events"]["families"]["vehicle"]
    lines.append(
        f"| vehicle events, scenarios (seed 2001): precision / recall / decoys | "
        f"{events['precision']:.2f} / {events['recall']:.2f} / {events['decoy_events']} | "
        f"{old['precision']:.2f} / {old['recall']:.2f} / {old['decoy_events']} |"
    )
    model = Path(det["model"]["path"]).stem
    ours, theirs = _dirty_rates(real, model), _dirty_rates(alone["real"], model)
    for where, rate in ours.items():
        lines.append(
            f"| dirty or uncovered boxes a frame, real {where} | {rate:.3f} | {theirs.get(where, float('nan')):.3f} |"
        )
    return lines + [""]


def _reports(paths: list[Path] | None) -> dict | None:
    if paths is None:
        return None
    return {kind: json.loads(p.read_text()) for kind, p in zip(("detection", "events", "real"), paths, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.truck_state", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune on a feixian real-data set and export ONNX")
    t.add_argument("--data", type=Path, required=True, help="a `feixian real-data` output folder")
    t.add_argument("--weights", type=Path, default=Path("../shared/models/yolov8n.pt"))
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--epochs", type=int, default=6)
    t.add_argument("--samples-per-epoch", type=int, default=3200)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--layers", type=int, default=BACKBONE_LAYERS, help="yolov8n layers kept as the backbone")
    m = sub.add_parser("eval", help="confusion on the labelled trucks of YOLO folders")
    m.add_argument("--model", type=Path, required=True)
    m.add_argument("--data", type=Path, nargs="+", required=True)
    m.add_argument("--min-confidence", type=float, default=0.7)
    m.add_argument("--detector", type=Path, default=None, help="also score this ONNX detector's own truck classes")
    c = sub.add_parser("card", help="write the model card from the train and eval reports")
    c.add_argument("--name", required=True)
    c.add_argument("--model", type=Path, required=True)
    c.add_argument("--stage", type=Path, required=True, help="eval report on held-out generated trucks, --detector")
    c.add_argument("--real", type=Path, required=True, help="eval report on the real sets' test trucks")
    c.add_argument("--reproduce", required=True, help="the command that reproduces the model")
    c.add_argument(
        "--deployed", type=Path, nargs=3, help="feixian eval reports of the shipped pair: detection, events, real"
    )
    c.add_argument("--alone", type=Path, nargs=3, help="the same three reports of the detector alone (its card's)")
    c.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "card":
        reports = [json.loads(p.read_text()) for p in (args.model.with_suffix(".train.json"), args.stage, args.real)]
        pair = [_reports(paths) for paths in (args.deployed, args.alone)]
        args.out.write_text(card(args.name, *reports, args.reproduce, args.model.stat().st_size, *pair) + "\n")
        if pair[0] is not None:  # the pair's figures beside the card, in one file
            args.out.with_suffix(".deployed.json").write_text(json.dumps(pair[0], ensure_ascii=False, indent=1) + "\n")
        return 0
    try:
        if args.command == "train":
            report = train(
                args.data, args.weights, args.out, args.epochs, args.seed, args.samples_per_epoch, layers=args.layers
            )
            args.out.with_suffix(".train.json").write_text(json.dumps(report, indent=2) + "\n")
        else:
            report = measure(args.model, args.data, args.min_confidence, args.detector)
    except TruckStateError as e:
        print(f"truck_state: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
