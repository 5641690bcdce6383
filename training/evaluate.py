"""`feixian eval`: detection mAP of an ONNX detector, and event precision/recall of the whole pipeline.

Detection: the runtime `OnnxDetector` (not the training framework) runs on a YOLO-format split, so
mAP and latency describe production. Events: every scenario video is replayed through the same
pipeline `feixian replay` uses, into a throw-away data dir, and the cases are matched against the
scenario's ground truth (category, subtype and zone agree, times overlap). Real footage (`--data real:SETS`,
`--video`): a model and a COCO baseline on held-out real photos and video, see `training.real_eval`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import yaml

from cases.schema import case_to_json
from feixian.config import Config, ConfigError, ModelSettings, Settings, load_config, load_points
from feixian.detect import positive_int
from pipeline.detector import DetectorError
from training.metrics import APAccumulator, MissedAs, OverlapRecall, SizeRecall
from training.real_eval import Detector, RealEvalError, evaluate_real, export_ultralytics_onnx, resolve_sets
from training.real_sets import CLASS_MAPS, COCO_TO_FEIXIAN

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
DEFAULT_CONF = ModelSettings.model_fields["conf_threshold"].default
LATE_START_S = 10.0  # the bar an event's start is held to: within this of the dwell crossing (or first sight)


class EvalError(RuntimeError):
    """Evaluation input is unusable."""


def split_images(data_yaml: Path, split: str | None) -> tuple[list[Path], list[str], str]:
    """The images of `split` (None: `test` where the YAML has one, else `val`), the class names, and the
    split used."""
    cfg = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    names = cfg["names"]
    names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    root = Path(cfg.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    if split is None:
        split = "test" if cfg.get("test") else "val"
    images = []
    for name in ("train", "val") if split == "all" else (split,):
        entry = cfg.get(name)
        if entry is None:
            raise EvalError(f"{data_yaml}: no '{name}' split")
        for folder in [entry] if isinstance(entry, str) else entry:
            images += sorted(p for p in (root / folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise EvalError(f"{data_yaml}: no images in split {split}")
    return images, names, split


def _label_path(image: Path) -> Path:
    """YOLO layout: the label of .../images/<...>/x.jpg is .../labels/<...>/x.txt."""
    parts = list(image.parts)
    if "images" not in parts[:-1]:
        raise EvalError(f"{image}: not under an 'images' folder, so its YOLO label cannot be found")
    idx = len(parts) - 2 - parts[-2::-1].index("images")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _read_labels(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file() or path.stat().st_size == 0:
        return np.zeros((0, 4)), np.zeros(0, int)
    rows = np.loadtxt(path, ndmin=2)
    cls = rows[:, 0].astype(int)
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1), cls


def evaluate_detection(
    model: str | Path | Detector,
    data_yaml: str | Path,
    split: str | None = None,
    limit: int | None = None,
    conf: float = DEFAULT_CONF,
) -> dict:
    """mAP50, mAP50-95 and per-class AP of `model` on a YOLO-format split, CPU latency per frame, and
    the share of objects found at the operating confidence `conf`, by class and on-screen height and by
    how much another object covers them, and what the ones missed there were taken for."""
    data_yaml = Path(data_yaml)
    images, names, split = split_images(data_yaml, split)
    images = images[:limit] if limit else images
    scored = model if isinstance(model, Detector) else Detector(Path(model).stem, Path(model))
    model = scored.path
    # Ultralytics' validation thresholds, so figures compare with its reports.
    detector = scored.at(0.001, 0.7)
    to_dataset = {i: names.index(n) for i, n in enumerate(detector.class_names) if n in names}
    acc = APAccumulator(names)
    by_height = SizeRecall(names, conf=conf)
    by_overlap = OverlapRecall(names, conf=conf)
    missed = MissedAs(names, conf=conf)
    latencies = []
    shapes: Counter[tuple[int, int]] = Counter()
    for path in images:
        img = cv2.imread(str(path))
        if img is None:
            raise EvalError(f"cannot read image {path}")
        shapes[img.shape[:2]] += 1
        t0 = time.perf_counter()
        det = detector.detect(img)
        latencies.append(time.perf_counter() - t0)
        keep = np.array([c in to_dataset for c in det.class_id], bool)
        pred_cls = np.array([to_dataset[c] for c in det.class_id[keep]], int)
        gt_boxes, gt_cls = _read_labels(_label_path(path), img.shape[1], img.shape[0])
        acc.add(det.xyxy[keep], det.confidence[keep], pred_cls, gt_boxes, gt_cls)
        for tally in (by_height, by_overlap, missed):
            tally.add(det.xyxy[keep], det.confidence[keep], pred_cls, gt_boxes, gt_cls)
    result = acc.result()
    result["recall_by_height"] = by_height.result()
    result["recall_by_overlap"] = by_overlap.result()
    result["missed_as"] = missed.result()
    result.update(
        {
            "images": len(images),
            "split": split,
            "latency_ms": latency_ms(latencies[1:] or latencies),  # the first run allocates buffers
            # What the latency was measured on: a dynamic-input model runs a 16:9 frame at fewer pixels.
            "frames": [
                {"frame": list(hw), "input": list(detector.input_shape_for(*hw)), "images": n}
                for hw, n in shapes.most_common()
            ],
            "model": model_facts(detector, Path(model)),
        }
    )
    return result


def latency_ms(seconds: list[float]) -> dict[str, float]:
    """Mean, median and 95th percentile of timings given in seconds, in milliseconds."""
    ms = np.array(seconds) * 1000
    return {
        "mean": round(float(ms.mean()), 2),
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
    }


def model_facts(detector, path: Path) -> dict:
    meta = detector.metadata
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": detector.sha256,
        "input_size": list(detector.input_size),
        "dynamic_input": detector.dynamic_input,
        "classes": list(detector.class_names),
        "version": meta.get("feixian_version"),
        "gflops": float(meta["gflops"]) if meta.get("gflops") else None,
        "data_fingerprint": meta.get("data_fingerprint"),
    }


@dataclass
class _Truth:
    category: str
    subtype: str
    zone_id: str
    start_s: float
    end_s: float
    anchor_s: float  # dwell crossing (occupation) or first sight (vehicle)
    plate: str | None


def _overlap(a0: float, a1: float, b0: float, b1: float, slack: float = 1.0) -> float:
    return min(a1, b1) - max(a0, b0) + slack


def match_events(truths: list[_Truth], found: list[dict], decoys: list[dict], plates_read: bool = False) -> dict:
    """Greedy one-to-one matching of found events to ground truth; unmatched found events that fall on
    a decoy's interval are counted as decoy events. With `plates_read`, each matched event with a true
    plate scores whether its plate is exactly right (none read is wrong); without, plates are not scored.
    `late_starts` lists the matched events whose start is off by more than LATE_START_S."""
    pairs = []
    for i, t in enumerate(truths):
        for j, f in enumerate(found):
            if (f["category"], f["subtype"], f["zone_id"]) != (t.category, t.subtype, t.zone_id):
                continue
            ov = _overlap(t.start_s, t.end_s, f["start_s"], f["end_s"])
            if ov > 0:
                pairs.append((ov, i, j))
    matched_t, matched_f, errors, plates, late = set(), set(), [], [], []
    for _, i, j in sorted(pairs, reverse=True):
        if i in matched_t or j in matched_f:
            continue
        matched_t.add(i)
        matched_f.add(j)
        errors.append(abs(found[j]["anchor_s"] - truths[i].anchor_s))
        if errors[-1] > LATE_START_S:
            late.append({**vars(truths[i]), "found_anchor_s": found[j]["anchor_s"], "case_id": found[j].get("case_id")})
        if truths[i].plate is not None and plates_read:
            plates.append((found[j].get("plate") == truths[i].plate, found[j].get("plate") is not None))
    decoy_hits = 0
    for j, f in enumerate(found):
        if j in matched_f:
            continue
        on_decoy = (
            d.get("zone_id") in (None, f["zone_id"])
            and _overlap(d["start_s"], d["end_s"], f["start_s"], f["end_s"]) > 0
            for d in decoys
        )
        if any(on_decoy):
            decoy_hits += 1
    return {
        "tp": len(matched_t),
        "fn": len(truths) - len(matched_t),
        "fp": len(found) - len(matched_f),
        "decoy_events": decoy_hits,
        "start_errors_s": errors,
        "late_starts": late,
        "plates": plates,
        "unmatched_truth": [vars(truths[i]) for i in range(len(truths)) if i not in matched_t],
        "unmatched_found": [found[j] for j in range(len(found)) if j not in matched_f],
    }


def scenario_truth(scenario: dict) -> list[_Truth]:
    """Ground-truth events of a scenario.json, anchored at the dwell crossing or first sight."""
    out = []
    for e in scenario["events"]:
        anchor = e["dwell_cross_s"] if e["category"] == "occupation" else e["start_s"]
        out.append(_Truth(e["category"], e["subtype"], e["zone_id"], e["start_s"], e["end_s"], anchor, e.get("plate")))
    return out


def found_events(cases: list[dict], start: datetime) -> list[dict]:
    """Cases as `feixian cases list --json` prints them, on the scenario's clock (seconds from `start`)."""

    def s(t: str | None) -> float | None:
        return None if t is None else (datetime.fromisoformat(t) - start).total_seconds()

    found = []
    for c in cases:
        started, triggered, ended = s(c["started_at"]), s(c["triggered_at"]), s(c["ended_at"])
        found.append(
            {
                "case_id": c["id"],
                "category": c["category"],
                "subtype": c["subtype"],
                "zone_id": c["zone_id"],
                "start_s": started,
                "end_s": ended if ended is not None else triggered,
                "anchor_s": triggered if c["category"] == "occupation" else started,
                "plate": c["party"],
            }
        )
    return found


def score_scenario(scenario: dict, cases: list[dict], plates_read: bool = False) -> dict[str, dict]:
    """Per family: matches, misses, spurious and decoy events of `cases` against the scenario."""
    start = datetime.fromisoformat(scenario["start_time"])
    found = found_events(cases, start)
    truths = scenario_truth(scenario)
    return {
        family: match_events(
            [t for t in truths if t.category == family],
            [f for f in found if f["category"] == family],
            scenario.get("decoys", []),
            plates_read,
        )
        for family in ("occupation", "vehicle")
    }


def summarise(scored: Iterable[dict[str, dict]]) -> dict[str, dict]:
    """Per family, the totals of `score_scenario` results: precision, recall, counts and start errors."""
    totals: dict[str, dict] = {}
    for result in scored:
        for family, r in result.items():
            agg = totals.setdefault(family, {"tp": 0, "fn": 0, "fp": 0, "decoy_events": 0, "errors": [], "plates": []})
            for k in ("tp", "fn", "fp", "decoy_events"):
                agg[k] += r[k]
            agg["errors"] += r["start_errors_s"]
            agg["plates"] += r["plates"]
    families = {}
    for fam, a in totals.items():
        families[fam] = {
            "precision": a["tp"] / (a["tp"] + a["fp"]) if a["tp"] + a["fp"] else None,
            "recall": a["tp"] / (a["tp"] + a["fn"]) if a["tp"] + a["fn"] else None,
            "tp": a["tp"],
            "fp": a["fp"],
            "fn": a["fn"],
            "decoy_events": a["decoy_events"],
            "start_error_s": {
                "max": round(max(a["errors"]), 2) if a["errors"] else None,
                "mean": round(float(np.mean(a["errors"])), 2) if a["errors"] else None,
                "late": sum(e > LATE_START_S for e in a["errors"]),
            },
        }
        if fam == "vehicle":
            # Share of matched events with a true plate whose plate was read exactly; null: no reader ran.
            plates = a["plates"]
            families[fam]["plate_exact"] = (sum(e for e, _ in plates) / len(plates)) if plates else None
            families[fam]["plate_read"] = (sum(r for _, r in plates) / len(plates)) if plates else None
    return families


def _without_lists(result: dict[str, dict]) -> dict[str, dict]:
    return {fam: {k: v for k, v in r.items() if k not in ("start_errors_s", "plates")} for fam, r in result.items()}


def scenario_dirs(scenarios_dir: str | Path) -> list[Path]:
    """The scenario folders (each with a scenario.json) under `scenarios_dir`, sorted by name."""
    scenarios_dir = Path(scenarios_dir)
    dirs = (
        sorted(d for d in scenarios_dir.iterdir() if (d / "scenario.json").is_file()) if scenarios_dir.is_dir() else []
    )
    if not dirs:
        raise EvalError(f"{scenarios_dir}: no scenario folders (with scenario.json)")
    return dirs


def settings_for(model: str | Path, settings: Settings | None) -> Settings:
    """`settings` (a deployment's, or the built-in defaults) running `model` instead of its own detector."""
    path = str(Path(model).resolve())
    if settings is None:
        return Settings(model=ModelSettings(path=path))
    return settings.model_copy(update={"model": settings.model.model_copy(update={"path": path})})


def scenario_config(scenario_dir: Path, settings: Settings, data_dir: Path) -> Config:
    """One scenario's points (its video as a file source) with a throw-away SQLite database and evidence
    folder under `data_dir`, run with the deployment's model, plate, rule and motion gate settings (not its
    storage, bus or server)."""
    points = load_points(scenario_dir / "points.yaml")
    run = Settings(model=settings.model, plates=settings.plates, rules=settings.rules, motion=settings.motion)
    database_url = f"sqlite:///{(data_dir / 'feixian.db').resolve()}"
    return Config(run, points, scenario_dir, scenario_dir, data_dir, database_url=database_url)


def scenario_runtime(scenario_dir: Path, settings: Settings, data_dir: Path):
    """A `Runtime` over `scenario_config`: the pipeline exactly as a deployment runs it."""
    from feixian.runtime import Runtime

    return Runtime(scenario_config(scenario_dir, settings, data_dir))


def evaluate_scenarios(
    model: str | Path,
    scenarios_dir: str | Path,
    work_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> dict:
    """Replay every scenario through the full pipeline and score events against ground truth.

    `settings` (see `deployment_settings`): the thresholds, class map, plate reader and rule settings to
    run `model` with, as a deployment would; default: the built-in ones, and no plates read (plate_exact
    null).
    """
    from feixian.runtime import replay

    dirs = scenario_dirs(scenarios_dir)
    tmp = tempfile.TemporaryDirectory(prefix="feixian-eval-") if work_dir is None else None
    work = Path(work_dir or tmp.name)
    run = settings_for(model, settings)
    scored = {}
    for d in dirs:
        scenario = json.loads((d / "scenario.json").read_text(encoding="utf-8"))
        rt = scenario_runtime(d, run, work / d.name)
        replay(rt)
        plates_read = rt.plate_reader is not None
        scored[d.name] = score_scenario(scenario, [case_to_json(c) for c in rt.cases.all_cases()], plates_read)
    if tmp is not None:
        tmp.cleanup()
    families = summarise(scored.values())
    return {
        "scenarios": len(dirs),
        "thresholds": {k: getattr(run.model, f"{k}_threshold") for k in ("conf", "track", "iou")},
        "plate_reader": Path(run.plates.model).name if run.plates.model else None,
        "rules": run.rules.model_dump(),
        "families": families,
        "decoy_events": sum(f["decoy_events"] for f in families.values()),
        "per_scenario": {name: _without_lists(result) for name, result in scored.items()},
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="detection mAP (--data), real footage (--data real:SETS, --video) or events (--scenarios)"
    )
    p.add_argument("--model", required=True, help="ONNX detector")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--data",
        help="YOLO dataset YAML: detection mAP on its test split, else its val split; or real:SET[,SET] / real:all: "
        "the held-out parts of the real photo sets (training/real_sets.py) under --data-root",
    )
    g.add_argument("--scenarios", help="folder of scenario folders: event precision/recall")
    p.add_argument(
        "--split",
        default=None,
        choices=["train", "val", "test", "all"],
        help="default: test where the YAML has one (every image of a `feixian synth` set), else val",
    )
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    p.add_argument(
        "--config",
        default=None,
        help="settings YAML (e.g. configs/default.yaml); with --scenarios its model thresholds, class map, plate "
        "reader and rules are run with, with --data its confidence threshold sets recall_by_height's, "
        "recall_by_overlap's and missed_as', with real footage its thresholds and class map are the deployment's; "
        "default: the built-in ones",
    )
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    real = p.add_argument_group("real footage (--data real:SETS and/or --video)")
    real.add_argument("--data-root", default="../shared/data", help="folder holding real/ (default ../shared/data)")
    real.add_argument("--video", action="append", default=[], help="a real video: boxes a class a frame (repeatable)")
    real.add_argument("--every", type=positive_int, default=1, help="look at every N-th video frame (default 1)")
    real.add_argument(
        "--class-map", default=None, choices=sorted(CLASS_MAPS), help="map --model's classes (default: the settings')"
    )
    real.add_argument(
        "--baseline",
        default=None,
        help="a COCO detector scored beside --model through the COCO class map: an Ultralytics .pt (exported to "
        "ONNX in a temporary folder) or its ONNX export, e.g. ../shared/models/yolov8n.pt",
    )
    p.set_defaults(func=_run)


def deployment_settings(config: str | None) -> Settings | None:
    """A settings file's settings, its plate reader's and second looks' paths made absolute (the detector is
    given apart)."""
    if config is None:
        return None
    if not Path(config).is_file():
        raise EvalError(f"settings not found: {config}")
    cfg = load_config(config)
    settings = cfg.settings
    plates = {
        key: str(path)
        for key, path in (
            ("model", cfg.plate_model_path),
            ("province_model", settings.plates.province_model_path(cfg.base_dir)),
        )
        if path is not None
    }
    if plates:
        settings = settings.model_copy(update={"plates": settings.plates.model_copy(update=plates)})
    stages = {
        name: getattr(settings.model, name).model_copy(update={"path": str(cfg.stage_path(name))})
        for name in ("truck_state", "item_check")
        if getattr(settings.model, name) is not None
    }
    if stages:
        settings = settings.model_copy(update={"model": settings.model.model_copy(update=stages)})
    return settings


def _run(args: argparse.Namespace) -> int:
    try:
        if not Path(args.model).is_file():
            raise EvalError(f"model not found: {args.model}")
        settings = deployment_settings(args.config)
        if (args.data or "").startswith("real:") or args.video:
            result = _run_real(args, settings)
        elif args.data:
            model = settings.model if settings else ModelSettings(path=args.model)
            detector = Detector(Path(args.model).stem, Path(args.model), None, model)
            result = evaluate_detection(detector, args.data, args.split, args.limit, model.conf_threshold)
        elif args.scenarios:
            result = evaluate_scenarios(args.model, args.scenarios, settings=settings)
        else:
            raise EvalError("give --data, --scenarios or --video")
    except (EvalError, ConfigError, RealEvalError, DetectorError) as e:
        print(f"feixian eval: {e}", file=sys.stderr)
        return 2
    write_json(result, args.out)
    return 0


def _run_real(args: argparse.Namespace, settings: Settings | None) -> dict:
    """`--data real:SETS` and/or `--video`: --model (and --baseline) on real footage at the deployment's thresholds."""
    model = settings.model if settings else ModelSettings(path=args.model)
    class_map = CLASS_MAPS[args.class_map] if args.class_map else model.class_map
    detectors = [Detector(Path(args.model).stem, Path(args.model), class_map, model)]
    sets = resolve_sets(args.data) if args.data else []
    with tempfile.TemporaryDirectory(prefix="feixian-eval-") as tmp:
        if args.baseline:
            baseline = Path(args.baseline)
            if not baseline.is_file():
                raise EvalError(f"baseline not found: {baseline}")
            onnx = baseline if baseline.suffix == ".onnx" else export_ultralytics_onnx(baseline, Path(tmp))
            detectors.append(Detector(baseline.stem, onnx, COCO_TO_FEIXIAN))
        videos = [Path(v) for v in args.video]
        return evaluate_real(
            detectors, sets, Path(args.data_root), model.conf_threshold, model.iou_threshold, videos, args.every
        )


def write_json(result: dict, out: str | None) -> None:
    """Print a result as JSON, and write it to `out` too when given (its folder created)."""
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")
    print(text)
