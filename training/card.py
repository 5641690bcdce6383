"""Model card: what `make train` measured, written next to the shipped ONNX (`models/<name>.md`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# AP50 below which a class is listed as weak (the project's bar for every class).
WEAK_AP50 = 0.8


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _training(train: dict) -> str:
    return (
        f"{train['epochs']} epochs at {train.get('imgsz', '?')} px, seed {train['seed']}, "
        f"{train['train_seconds'] / 60:.1f} min on {train.get('hardware', 'this 2-core machine')}"
        f"{' (' + train['note'] + ')' if train.get('note') else ''}"
    )


def _origin(train: dict) -> str:
    return f", fine-tuned from `{train['weights']}`" if train.get("weights") else ", from scratch"


def _input(det: dict) -> str:
    h, w = det["model"]["input_size"]
    if not det["model"].get("dynamic_input"):
        return f"{w}x{h} RGB, letterboxed"
    runs = ", ".join(
        f"a {f['frame'][1]}x{f['frame'][0]} frame at {f['input'][1]}x{f['input'][0]}" for f in det["frames"]
    )
    return f"RGB letterboxed into {w}x{h}, padded only to a multiple of 32 (dynamic shape): {runs}"


def _origin_lines(train: dict, ancestors: list[dict]) -> list[str]:
    """The card's first paragraph: where the weights began (the root of the fine-tuning chain)."""
    root = (list(ancestors) or [train])[-1]
    if str(root.get("weights") or "").endswith(".pt"):
        return [
            "A feixian street-violation detector: Ultralytics' COCO YOLOv8n whole, so people, cars, trucks, tables,",
            "chairs and umbrellas are found at least where COCO's model finds them, plus one class branch for all of",
            "feixian's classes (`training.dual_head`), trained on `feixian real-data` (real photos, rendered items",
            "composited onto them, generated streets) with all else frozen; exported to ONNX, run with ONNX Runtime.",
        ]
    return [
        "A feixian street-violation detector: Ultralytics YOLO trained from scratch (no pretrained",
        "weights) on scenes from `feixian synth`, exported to ONNX and run with ONNX Runtime.",
    ]


def lineage(train: dict, train_json: Path) -> list[dict]:
    """The training summaries of the models `train` was fine-tuned from, nearest first: each summary names
    its `weights`, whose own summary lies beside that ONNX as `<stem>.train.json` (how `make train` and
    `models/` keep them). Relative `weights` paths are taken from the working directory, as `feixian train`
    was given them; a chain stops at a model trained from scratch or whose summary is missing."""
    chain, seen = [], {train_json.resolve()}
    while (weights := train.get("weights")) and str(weights).endswith(".onnx"):
        summary = Path(str(Path(weights))[: -len(".onnx")] + ".train.json")
        if not summary.is_file() or summary.resolve() in seen:
            break
        seen.add(summary.resolve())
        train = json.loads(summary.read_text())
        chain.append(train)
    return chain


def render_card(
    name: str,
    train: dict,
    det: dict,
    events: dict | None,
    command: str,
    ancestors: list[dict] = (),
    real: dict | None = None,
) -> str:
    """The card's Markdown; `ancestors` are the summaries of the models `train` was fine-tuned from,
    nearest first (see `lineage`); `real` is the JSON of `feixian eval --data real:...` (and/or `--video`)."""
    lines = [
        *_fact_lines(name, train, det, ancestors),
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        *_detection_lines(det),
    ]
    if events is not None:
        lines += _event_lines(events)
    lines += real_footage_lines(real)
    lines += _limit_lines(det, real_measured=bool(real))
    return "\n".join(lines)


def _fact_lines(name: str, train: dict, det: dict, ancestors: list[dict]) -> list[str]:
    """The title, what the model is, and the table of its facts (the training of each ancestor included)."""
    model = det["model"]
    return [
        f"# {name}",
        "",
        *_origin_lines(train, ancestors),
        "",
        "| fact | value |",
        "|---|---|",
        f"| classes | {', '.join(model['classes'])} |",
        f"| input | {_input(det)} |",
        f"| network | {train['model_yaml']} |",
        f"| ONNX size | {model['size_bytes'] / 1e6:.2f} MB |",
        f"| GFLOPs at input size | {_fmt(train.get('gflops'), 2)} |",
        f"| CPU latency per frame (2 cores, ONNX Runtime, held-out images) | mean {det['latency_ms']['mean']} ms, "
        f"p95 {det['latency_ms']['p95']} ms |",
        f"| training | {_training(train)}{_origin(train)} |",
        *(
            f"| training of `{child['weights']}` | {_training(parent)}{_origin(parent)} |"
            for child, parent in zip([train, *ancestors][: len(ancestors)], ancestors, strict=True)
        ),
        f"| training data fingerprint | `{train['data_fingerprint']}` |",
        f"| ONNX SHA-256 | `{model['sha256']}` |",
        "",
    ]


def _detection_lines(det: dict) -> list[str]:
    """Detection on the held-out images: mAP, AP per class, and the share found by size, overlap and confusion."""
    rows = "\n".join(
        f"| {c} | {det['instances'].get(c, 0)} | {_fmt(ap)} | {_fmt(det['per_class_ap50_95'].get(c))} |"
        for c, ap in det["per_class_ap50"].items()
    )
    return [
        f"## Detection on held-out synthetic images ({det['images']} images, seeds never used in training)",
        "",
        f"mAP50 **{_fmt(det['map50'])}**, mAP50-95 **{_fmt(det['map50_95'])}**.",
        "",
        "| class | instances | AP50 | AP50-95 |",
        "|---|---|---|---|",
        rows,
        "",
        *_binned_table(det.get("recall_by_height"), "height_px", "box height in the frame (px)"),
        *_binned_table(
            det.get("recall_by_overlap"), "covered", "the share of the box that another labelled object's box covers"
        ),
        *_missed_lines(det.get("missed_as")),
    ]


def _event_lines(events: dict) -> list[str]:
    """Events on the held-out scenario videos: the thresholds and rules run with, and each family's figures."""
    lines = [
        f"## Events on {events['scenarios']} held-out scenario videos",
        "",
        *(
            [f"Run with conf_threshold {t['conf']}, track_threshold {t['track']}, iou_threshold {t['iou']}.", ""]
            if (t := events.get("thresholds"))
            else []
        ),
        *([_rules_line(events["rules"]), ""] if "rules" in events else []),
        "| family | precision | recall | TP | FP | FN | max start error (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for fam, f in events["families"].items():
        lines.append(
            f"| {fam} | {_fmt(f['precision'])} | {_fmt(f['recall'])} | {f['tp']} | {f['fp']} | {f['fn']} "
            f"| {_fmt(f['start_error_s']['max'], 1)} |"
        )
    return [*lines, "", f"Events raised by decoys: {events['decoy_events']}.", ""]


def _limit_lines(det: dict, real_measured: bool = False) -> list[str]:
    """The weak classes and what the card's figures do not promise."""
    model = det["model"]
    weak = [c for c, ap in det["per_class_ap50"].items() if ap is not None and ap < WEAK_AP50]
    return [
        "## Limits",
        "",
        f"Classes under AP50 {WEAK_AP50}: {', '.join(weak) if weak else 'none'}. Small items (a chair far from the",
        f"camera is 24 px tall in a 640 px-wide frame, about {round(24 * model['input_size'][0] / 640)} px in the "
        f"{model['input_size'][0]} px input) are where this small network is weakest: the table of share found by",
        "box height above shows how much.",
        "",
        *(
            [
                "Measured on the real sets above, which are not a bureau's cameras: expect other figures on its own",
                "footage until the branch is trained on its labelled frames too (docs/training.md).",
            ]
            if real_measured
            else [
                "Trained on synthetic scenes only: on real footage expect lower accuracy until the model is",
                "fine-tuned on the bureau's own labelled frames (`feixian train --weights ... --data ...`,",
                "see README).",
            ]
        ),
        "Licence: the weights are this project's; the training code is Ultralytics (AGPL-3.0).",
        "",
    ]


def _binned_table(binned: dict | None, key: str, what: str) -> list[str]:
    """Share of objects found at the operating confidence, by class and by one measure binned (recall (n))."""
    if not binned:
        return []
    per_class = binned["per_class"]
    bins = [r[key] for r in next(iter(per_class.values()))]
    return [
        f"Objects found at confidence {binned['conf']} (IoU {binned['iou']}), by {what}: share found (instances).",
        "",
        "| class | " + " | ".join(bins) + " |",
        "|---|" + "---|" * len(bins),
        *(
            f"| {c} | "
            + " | ".join(f"{_fmt(r['recall'], 2)} ({r['instances']})" if r["instances"] else "-" for r in rows)
            + " |"
            for c, rows in per_class.items()
        ),
        "",
    ]


def _missed_lines(missed: dict | None) -> list[str]:
    """Per class with misses, what the missed objects were taken for (count), most common first."""
    if not missed:
        return []
    rows = [
        f"- {c}: " + ", ".join(f"{k} {n}" for k, n in taken.items())
        for c, taken in missed["per_class"].items()
        if taken
    ]
    if not rows:
        return []
    return [
        f"Objects missed at confidence {missed['conf']}, by what covered them (IoU {missed['iou']}): another "
        "class, `merged` (a box of their class that a neighbour claimed) or `nothing`.",
        "",
        *rows,
        "",
    ]


def real_footage_lines(real: dict | None) -> list[str]:
    """The "Real footage" section: AP50 per class on each real set's held-out part and the false boxes a
    frame at the deployment's threshold, one column or row per model scored in the same run."""
    if not real:
        return []
    models = list(real["models"])
    lines = ["## Real footage (held-out real photos and video, never trained on)", ""]
    if real["sets"]:
        lines += [
            "AP50 per class on the test part of each real set (`training/real_sets.py`); only the classes a set",
            "labels are scored there, and `truck` counts a truck boxed in any state.",
            "",
            f"| set (images) | class | instances | {' | '.join(models)} |",
            "|---|---|---|" + "---|" * len(models),
        ]
        for name, s in real["sets"].items():
            first = next(iter(s["models"].values()))
            for c in (c for c in s["labelled"] if first["instances"].get(c)):  # no instance: no AP to show
                aps = " | ".join(_fmt(s["models"][m]["per_class_ap50"].get(c)) for m in models)
                lines.append(f"| {name} ({s['images']}) | {c} | {first['instances'].get(c, 0)} | {aps} |")
        lines.append("")
    lines += [
        f"At the deployment's conf_threshold {real['conf_threshold']}: occupation boxes a frame (not on a labelled",
        "object of their class), dirty or uncovered truck boxes a frame, car and truck boxes a frame, and the",
        "objects of classes mapped to nothing (bus, motorbike ...) boxed as occupation items or dirty/uncovered.",
        "",
        "| footage | frames | model | occupation / frame | dirty or uncovered / frame | cars, trucks / frame "
        "| unmapped objects boxed |",
        "|---|---|---|---|---|---|---|",
    ]
    footage = [(n, s["models"], "") for n, s in real["sets"].items()]
    footage += [(n, v["models"], _sampling(v["every"])) for n, v in real["videos"].items()]
    for name, per_model, note in footage:
        for m in models:
            f = per_model[m]["footage"]
            lines.append(
                f"| {name}{note} | {f['frames']} | {m} | {_fmt(f['occupation_per_frame'], 2)} "
                f"| {_fmt(f['dirty_uncovered_per_frame'], 2)} | {_vehicles_per_frame(f)} | {_unmapped(f)} |"
            )
    return [*lines, ""]


def _sampling(every: int) -> str:
    return " (every frame)" if every == 1 else f" (one frame in {every})"


def _vehicles_per_frame(footage: dict) -> str:
    per_frame = footage["boxes_per_frame"]
    trucks = sum(per_frame.get(c, 0.0) for c in ("truck", "truck_dirty", "truck_uncovered"))
    return f"{per_frame.get('car', 0.0):.2f}, {trucks:.2f}"


def _unmapped(footage: dict) -> str:
    """`boxed of labelled`, and the source classes boxed; `-` without unmapped labels."""
    unmapped = footage["unmapped"]
    if not unmapped:
        return "-"
    boxed = {s: u["boxes"] for s, u in unmapped.items() if u["boxes"]}
    total = f"{sum(boxed.values())} boxes on {sum(u['labels'] for u in unmapped.values())} objects"
    return total + (f" ({', '.join(f'{s} {n}' for s, n in boxed.items())})" if boxed else "")


def _rules_line(rules: dict) -> str:
    """The rule settings the events were raised with, as their differences from the defaults."""
    from feixian.rule_settings import RuleSettings

    defaults = RuleSettings().model_dump()
    changed = [f"{fam}.{k} {v}" for fam, vals in rules.items() for k, v in vals.items() if defaults[fam].get(k) != v]
    where = "feixian/rule_settings.py"
    return f"Rule settings: the defaults ({where}){', except ' + ', '.join(changed) if changed else ''}."


def main() -> int:
    p = argparse.ArgumentParser(description="write a model card from train/eval JSON")
    p.add_argument("--name", required=True)
    p.add_argument("--train", required=True, help="JSON from feixian train --summary")
    p.add_argument("--detection", required=True, help="JSON from feixian eval --data")
    p.add_argument("--events", default=None, help="JSON from feixian eval --scenarios")
    p.add_argument("--real", default=None, help="JSON from feixian eval --data real:... (and/or --video)")
    p.add_argument("--command", required=True, help="the command that reproduces the model")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    def load(path: str | None) -> dict | None:
        return json.loads(Path(path).read_text()) if path else None

    train = load(a.train)
    card = render_card(
        a.name,
        train,
        load(a.detection),
        load(a.events),
        a.command,
        ancestors=lineage(train, Path(a.train)),
        real=load(a.real),
    )
    Path(a.out).write_text(card, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
