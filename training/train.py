"""`feixian train`: train a YOLO detector with Ultralytics on any YOLO-format dataset, export ONNX.

Offline by design: the network is built from a model YAML (no pretrained download); `--weights`
fine-tunes from a local checkpoint instead, which is how a bureau retrains on its own footage: a .pt, or
the ONNX export the repository ships (its weights are unfolded into the network of `--model-yaml`). The
exported ONNX carries, besides Ultralytics' own metadata (class names, input size, stride), the model
version and a fingerprint of the training data, which every evidence manifest then records.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from training import USER_OMP_THREADS

DEFAULT_MODEL_YAML = "yolov8n.yaml"
# Images of the training split whose statistics the batch norms of an ONNX export take before fine-tuning
# (training/onnx_weights.py): enough for stable per-channel means, a second or two on a CPU.
CALIBRATION_IMAGES = 64


class TrainError(RuntimeError):
    """Training input is unusable (missing dataset, bad YAML)."""


@dataclass(frozen=True)
class TrainResult:
    onnx_path: Path
    best_pt: Path
    seconds: float
    gflops: float | None
    data_fingerprint: str
    epochs: int  # as trained: a `time` limit changes the number asked for


def dataset_fingerprint(data_yaml: str | Path) -> str:
    """SHA-256 over the dataset's YAML and every label file (sorted), so two models can be traced to
    the exact labels they learned from; images follow from the generator seed or the bureau's archive."""
    data_yaml = Path(data_yaml)
    cfg = _load_data_yaml(data_yaml)
    root = Path(cfg.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    h = hashlib.sha256(data_yaml.read_bytes())
    for label in sorted(root.rglob("labels/**/*.txt")):
        h.update(str(label.relative_to(root)).encode())
        h.update(label.read_bytes())
    return h.hexdigest()


def _load_data_yaml(path: Path) -> dict:
    if not path.is_file():
        raise TrainError(f"dataset YAML not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "names" not in data or "train" not in data:
        raise TrainError(f"{path}: not a YOLO dataset YAML (needs 'train' and 'names')")
    return data


def stamp_onnx_metadata(onnx_path: Path, extra: dict[str, str]) -> None:
    """Add key/value metadata to an ONNX file in place (existing keys are replaced)."""
    import onnx

    model = onnx.load(str(onnx_path))
    kept = [p for p in model.metadata_props if p.key not in extra]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in extra.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(onnx_path))


def train(
    data: str | Path,
    out: str | Path,
    model_yaml: str = DEFAULT_MODEL_YAML,
    weights: str | None = None,
    epochs: int = 30,
    imgsz: int = 320,
    batch: int = 32,
    seed: int = 0,
    workers: int = 2,
    version: str = "dev",
    runs_dir: str | Path = "runs",
    extra_args: dict | None = None,
    resume: bool = False,
    grow: bool = False,
    device: str = "cpu",
    keep_coco_scores: float = 0.0,
) -> TrainResult:
    """Train (or resume an interrupted run of the same name), export to ONNX at `imgsz`, stamp
    metadata, and copy the ONNX to `out`. `grow`: `model_yaml` adds layers to the ONNX `weights`'
    network or doubles its widths (training.onnx_weights). `device`: Ultralytics' device string ("cpu",
    "0" for the first CUDA GPU). `keep_coco_scores`: the weight of the teacher's scores of the classes it
    shares with feixian (training.coco_scores; the teacher is the `distill_model` of `extra_args`), 0 for none."""
    _train_on_every_core()
    data = Path(data).resolve()
    _load_data_yaml(data)
    fingerprint = dataset_fingerprint(data)
    out = Path(out)
    run_dir = Path(runs_dir).resolve() / out.stem
    weights, from_export = _starting_weights(
        weights, model_yaml, data, run_dir.parent / f"{out.stem}-init.pt", imgsz, grow
    )
    fixed = dict(
        data=str(data),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        seed=seed,
        deterministic=True,
        workers=workers,
        device=device,
        pretrained=weights is not None,
        amp=False,  # its check fetches a reference model over the network
        plots=False,  # plotting fetches a font over the network
        project=str(run_dir.parent),
        name=out.stem,
        exist_ok=True,
        verbose=True,
    )
    clash = sorted(set(extra_args or {}) & set(fixed))
    if clash:
        raise TrainError(f"extra training arguments {clash} are set by feixian train itself (use its flags)")
    if keep_coco_scores and not (extra_args or {}).get("distill_model"):
        raise TrainError("keeping COCO's scores needs their teacher: --hyp distill_model=PATH/yolov8n.pt")
    if resume:
        model = _resumed(run_dir)
    else:
        model = _new_model(model_yaml, weights, from_export, data)
        if keep_coco_scores:
            from training.coco_scores import trainer

            fixed["trainer"] = trainer(keep_coco_scores)
        model.train(**fixed, **(extra_args or {}))
    seconds, epochs = _training_seconds(run_dir), _epochs_trained(run_dir)
    best = Path(model.trainer.best)
    if not best.is_file():
        best = Path(model.trainer.last)
    gflops = export_onnx(
        best,
        imgsz,
        out,
        {
            "feixian_model": out.stem,
            "feixian_version": version,
            "data_fingerprint": fingerprint,
            "train_seed": str(seed),
            "train_epochs": str(epochs),
        },
    )
    return TrainResult(out, best, seconds, gflops, fingerprint, epochs)


def _train_on_every_core() -> None:
    import ultralytics.utils.torch_utils as torch_utils

    # Ultralytics trains on cpu_count - 1 threads to leave a core free; on a 2-core machine that halves
    # the speed of the only job the machine has. OMP_NUM_THREADS still rules where it is set: on a shared
    # machine two threads that wait for each other at every layer ran 8x slower than one (seen here).
    torch_utils.NUM_THREADS = int(USER_OMP_THREADS or os.cpu_count() or 1)


def _starting_weights(
    weights: str | None, model_yaml: str, data: Path, init: Path, imgsz: int, grow: bool
) -> tuple[str | None, bool]:
    """The checkpoint training starts from, and whether it came from an ONNX export: an export's weights are
    unfolded into the network of `model_yaml` (grown if `grow`) and saved at `init`."""
    if weights is not None and not Path(weights).is_file():
        raise TrainError(f"weights not found: {weights}")
    if grow and (weights is None or Path(weights).suffix.lower() != ".onnx"):
        raise TrainError("--grow extends the network of an ONNX export: give one with --weights")
    if weights is None or Path(weights).suffix.lower() != ".onnx":
        return weights, False
    from training.evaluate import split_images
    from training.onnx_weights import WeightsError, checkpoint_from_onnx

    images = split_images(data, "train")[0]
    calibration = images[:: max(1, len(images) // CALIBRATION_IMAGES)][:CALIBRATION_IMAGES]
    try:
        return str(checkpoint_from_onnx(weights, model_yaml, init, calibration, imgsz, grow)), True
    except WeightsError as e:
        raise TrainError(str(e)) from e


def _resumed(run_dir: Path):
    """The Ultralytics model of the interrupted run in `run_dir`, trained to its end."""
    from ultralytics import YOLO

    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise TrainError(f"nothing to resume: {last} does not exist")
    model = YOLO(str(last), task="detect")
    model.train(resume=True)
    return model


def _new_model(model_yaml: str, weights: str | None, from_export: bool, data: Path):
    """The Ultralytics model a new run trains: the network of `model_yaml`, with `weights` loaded if given."""
    from ultralytics import YOLO

    if from_export or _checkpoint_names(weights) == _load_data_yaml(data)["names"]:
        # The checkpoint is already a network with the dataset's classes (an ONNX export unfolded, or a
        # checkpoint of a previous run with these classes), which a YAML of another count (yolov8n.yaml's
        # 80) would not take: its class outputs would start afresh.
        return YOLO(weights, task="detect")
    model = YOLO(model_yaml, task="detect")
    return model.load(weights) if weights is not None else model


def export_onnx(checkpoint: str | Path, imgsz: int, out: str | Path, metadata: dict[str, str]) -> float | None:
    """Export a trained checkpoint to ONNX at `out` with feixian's metadata (plus its GFLOPs at
    `imgsz` square, returned); the export is dynamic in height and width, so a 16:9 camera frame is padded
    only to the next stride multiple (480x288 for a 640x360 frame instead of 480x480: 40 % less work, as
    Ultralytics' own predictor does with a dynamic model) at the very scale the network was trained at."""
    from ultralytics import YOLO
    from ultralytics.nn.modules.block import DFL

    from training.dual_head import last_axis_dfl

    trained = YOLO(str(checkpoint), task="detect")
    gflops = _gflops(trained, imgsz)
    head = trained.model.model[-1]
    if isinstance(head.dfl, DFL):  # the same boxes, its softmax 2-3 ms cheaper a call in ONNX Runtime
        head.dfl = last_axis_dfl(head.reg_max)
    exported = Path(trained.export(format="onnx", imgsz=imgsz, dynamic=True, simplify=False, opset=17))
    stamp_onnx_metadata(exported, {**metadata, "gflops": f"{gflops:.3f}" if gflops is not None else ""})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(exported, out)
    return gflops


def _checkpoint_names(weights: str | None) -> dict | None:
    """The class names of a .pt checkpoint, as a dataset YAML lists them; None for no or another kind of file."""
    if weights is None or Path(weights).suffix.lower() != ".pt":
        return None
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(weights, device="cpu")
    return dict(enumerate(model.names.values())) if isinstance(model.names, dict) else dict(enumerate(model.names))


def _training_seconds(run_dir: Path) -> float:
    """Training time of the run, resumed parts included.

    Ultralytics logs per epoch the seconds since the process began training, so a resumed run's clock
    starts again from zero: each part counts up to its last epoch.
    """
    with open(run_dir / "results.csv", newline="") as f:
        times = [float(row["time"]) for row in csv.DictReader(f)]
    ends_of_parts = [t for t, following in zip(times, times[1:], strict=False) if following < t]
    return sum(ends_of_parts) + (times[-1] if times else 0.0)


def hardware(device: str) -> str:
    """What a run on `device` trained on, for the model card: "2 CPU cores", "one NVIDIA H200 GPU and 16 CPU cores"."""
    cores = f"{os.cpu_count()} CPU cores"
    if device == "cpu":
        return cores
    import torch

    return f"one {torch.cuda.get_device_name(torch.cuda.current_device())} GPU and {cores}"


def _epochs_trained(run_dir: Path) -> int:
    with open(run_dir / "results.csv", newline="") as f:
        return max((int(row["epoch"]) for row in csv.DictReader(f)), default=0)


def _gflops(model, imgsz: int) -> float | None:
    try:
        from ultralytics.utils.torch_utils import get_flops

        return float(get_flops(model.model, imgsz))
    except Exception:  # FLOP counting is informative only; a model without it still exports
        return None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a detector on a YOLO-format dataset and export ONNX")
    p.add_argument("--data", required=True, help="dataset YAML (YOLO format)")
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. models/bureau-1.onnx")
    p.add_argument("--model-yaml", default=DEFAULT_MODEL_YAML, help="network definition (no download)")
    p.add_argument(
        "--weights", default=None, help="fine-tune from a local .pt checkpoint or an ONNX export of --model-yaml"
    )
    p.add_argument(
        "--grow",
        action="store_true",
        help="--model-yaml adds layers (e.g. a stride-4 level) to the network of an ONNX --weights, or doubles"
        " its widths (yolov8n.yaml from feixian-v8p)",
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu", help="Ultralytics device: cpu (default), 0 for the first CUDA GPU")
    p.add_argument("--version", default="dev", help="model version recorded in the ONNX metadata")
    p.add_argument("--runs-dir", default="runs", help="where Ultralytics writes checkpoints and logs")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run that writes --out")
    p.add_argument(
        "--keep-coco-scores",
        type=float,
        default=0.0,
        metavar="GAIN",
        help="also hold the student's person, car, chair, table and umbrella scores to those of --hyp"
        " distill_model (a COCO checkpoint) at every anchor but where a labelled box of the class says otherwise,"
        " at this loss gain (a --resume continues without it: Ultralytics rebuilds plain distillation)",
    )
    p.add_argument("--summary", default=None, help="write a JSON summary (time, GFLOPs, fingerprint) here")
    p.add_argument(
        "--hyp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Ultralytics training argument, e.g. close_mosaic=3 (repeatable)",
    )
    p.set_defaults(func=_run)


def parse_hyp(items: list[str]) -> dict:
    """KEY=VALUE pairs with YAML-typed values.

    >>> parse_hyp(["close_mosaic=3", "cache=true", "lr0=0.02"])
    {'close_mosaic': 3, 'cache': True, 'lr0': 0.02}
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrainError(f"--hyp wants KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def _run(args: argparse.Namespace) -> int:
    try:
        result = train(
            args.data,
            args.out,
            args.model_yaml,
            args.weights,
            args.epochs,
            args.imgsz,
            args.batch,
            args.seed,
            args.workers,
            args.version,
            args.runs_dir,
            parse_hyp(args.hyp),
            args.resume,
            args.grow,
            args.device,
            args.keep_coco_scores,
        )
    except TrainError as e:
        print(f"feixian train: {e}", file=sys.stderr)
        return 2
    summary = {
        "onnx": str(result.onnx_path),
        "best_pt": str(result.best_pt),
        "train_seconds": round(result.seconds, 1),
        "gflops": result.gflops,
        "data_fingerprint": result.data_fingerprint,
        "epochs": result.epochs,
        "device": args.device,
        "hardware": hardware(args.device),
        "imgsz": args.imgsz,
        "seed": args.seed,
        "model_yaml": args.model_yaml,
        "weights": args.weights,
        "grow": args.grow,
        "keep_coco_scores": args.keep_coco_scores,
        "hyp": parse_hyp(args.hyp),
    }
    text = json.dumps(summary, indent=2)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
