"""`feixian eval --data real:SETS` / `--video V`: detectors scored on real footage they were not trained on.

Every detector given (feixian's own, and a COCO baseline through `training.real_sets.COCO_TO_FEIXIAN`) runs
on the same held-out images of each real set (`training.real_sets.REAL_SETS`, their fixed test parts):

- AP50 per class, for the classes the set labels exhaustively (`labelled`) and only those: a box of a
  class the set leaves unlabelled is neither right nor wrong there. `truck` scores the truck family: a
  truck boxed as dirty or uncovered is still found; whether its state is right is what the next figures
  judge. The detector runs at Ultralytics' validation thresholds (confidence 0.001, NMS IoU 0.7).
- At the deployment's own thresholds (`model.conf_threshold`, `iou_threshold`), what would raise false
  cases (`training.metrics.FootageTally`): occupation boxes a frame not on a labelled object of their class,
  dirty or uncovered truck boxes a frame, and how objects of the source classes mapped to nothing (bus,
  motorbike, ambulance ...) are boxed.

A video (`--video`, every `--every`-th frame) gives the same deployment figures and boxes a class a frame:
real road footage with no stall and no muck truck in it shows the false-positive rate a camera would have.

>>> detectors = [Detector("feixian-street-v15", Path("models/feixian-street-v15.onnx"))]  # doctest: +SKIP
>>> r = evaluate_real(detectors, ["highway_night"], Path("../shared/data"), conf=0.2, iou=0.5)  # doctest: +SKIP
>>> r["sets"]["highway_night"]["models"]["feixian-street-v15"]["footage"]["occupation_per_frame"]  # doctest: +SKIP
2.3
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline.taxonomy import CLASSES, TRUCK_CLASSES
from training.metrics import APAccumulator, FootageTally
from training.real_sets import REAL_SETS, RealSet

if TYPE_CHECKING:
    from feixian.config import ModelSettings

# Ultralytics' validation thresholds, so AP figures compare with its reports.
AP_CONF, AP_IOU = 0.001, 0.7


class RealEvalError(ValueError):
    """A real set, video or model given to evaluate is unusable."""


@dataclass(frozen=True)
class Detector:
    """A detector to score: a label for the tables, its ONNX file and the map of its classes onto feixian's
    (None: it speaks feixian's classes)."""

    label: str
    path: Path
    class_map: dict[str, str] | None = None
    model: ModelSettings | None = None  # the settings whose second looks run behind it (absolute paths)

    def at(self, conf: float, iou: float):
        """The detector keeping boxes from `conf`, with its settings' second looks behind it."""
        from pipeline.crop_stages import StagedDetector
        from pipeline.detector import OnnxDetector

        detector = OnnxDetector(self.path, conf, iou, self.class_map)
        return StagedDetector.of(detector, self.model.stages(Path.cwd()) if self.model else [])


def resolve_sets(spec: str) -> list[str]:
    """The set names of a `--data real:...` value: `real:all`, or `real:` and a comma-separated list.

    >>> resolve_sets("real:highway_night,coco128"), len(resolve_sets("real:all")) == len(REAL_SETS)
    (['highway_night', 'coco128'], True)
    """
    if not spec.startswith("real:"):
        raise RealEvalError(f"real footage is scored on --data real:SETS, not {spec!r}")
    names = spec.removeprefix("real:")
    chosen = list(REAL_SETS) if names == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in REAL_SETS]
    if unknown or not chosen:
        raise RealEvalError(f"unknown real sets {unknown or spec!r}; known: all, {', '.join(REAL_SETS)}")
    return chosen


def export_ultralytics_onnx(weights: Path, work_dir: Path) -> Path:
    """An ONNX export (640 px, dynamic shape, as `feixian train` exports) of an Ultralytics .pt checkpoint,
    written under `work_dir`: Ultralytics writes beside the checkpoint, so a copy is exported, never the
    original's folder touched."""
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    work_dir.mkdir(parents=True, exist_ok=True)
    copy = work_dir / weights.name
    shutil.copyfile(weights, copy)
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # Ultralytics logs its progress to stdout, where the eval JSON goes
    try:
        model = YOLO(str(copy), task="detect")
        return Path(model.export(format="onnx", imgsz=640, dynamic=True, simplify=False, opset=17))
    finally:
        LOGGER.setLevel(level)


def _family(name: str) -> str:
    """A truck of any state scores as `truck`."""
    return "truck" if name in TRUCK_CLASSES else name


def _xyxy(labels: list[tuple[str, tuple[float, ...]]], width: int, height: int) -> tuple[list[str], np.ndarray]:
    """Class names and pixel xyxy boxes of (name, normalised cx, cy, w, h) labels."""
    if not labels:
        return [], np.zeros((0, 4))
    b = np.array([box for _, box in labels], float) * [width, height, width, height]
    return [n for n, _ in labels], np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)


def evaluate_set(detector: Detector, real_set: RealSet, images: list[Path], conf: float, iou: float) -> dict:
    """AP50 of the set's labelled classes and the deployment's false boxes (`FootageTally`) on `images`."""
    ranked, deployed = detector.at(AP_CONF, AP_IOU), detector.at(conf, iou)
    scored = [c for c in CLASSES if c in real_set.labelled]
    acc, tally = APAccumulator(scored), FootageTally(iou=0.5)
    for path in images:
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise RealEvalError(f"cannot read image {path}")
        h, w = bgr.shape[:2]
        source = real_set.source_labels(path)
        truth_names, truth_boxes = _xyxy(real_set.labels(path), w, h)
        unmapped_names, unmapped_boxes = _xyxy([lb for lb in source if real_set.map_class(lb[0]) is None], w, h)
        det = ranked.detect(bgr)
        family = [_family(str(n)) for n in det.data["class_name"]]
        keep = np.array([f in scored for f in family], bool)
        pred_cls = np.array([scored.index(f) for f, k in zip(family, keep, strict=True) if k], int)
        gt_cls = np.array([scored.index(n) for n in truth_names], int)
        acc.add(det.xyxy[keep], det.confidence[keep], pred_cls, truth_boxes, gt_cls)
        kept = deployed.detect(bgr)
        tally.add(kept.data["class_name"], kept.xyxy, truth_names, truth_boxes, unmapped_names, unmapped_boxes)
    ap = acc.result()
    return {
        "map50": round(ap["map50"], 4),
        "per_class_ap50": ap["per_class_ap50"],
        "instances": ap["instances"],
        "footage": tally.result(),
    }


def evaluate_video(detector: Detector, video: Path, every: int, conf: float, iou: float) -> dict:
    """The deployment's boxes a class a frame and its false boxes on every `every`-th frame of `video`."""
    from feixian.detect import InputError, frames_of

    deployed = detector.at(conf, iou)
    tally = FootageTally(iou=0.5)
    try:
        for _, bgr in frames_of(video, every):
            kept = deployed.detect(bgr)
            tally.add(kept.data["class_name"], kept.xyxy)
    except InputError as e:
        raise RealEvalError(str(e)) from e
    return tally.result()


def evaluate_real(
    detectors: list[Detector],
    sets: list[str],
    data_root: Path,
    conf: float,
    iou: float,
    videos: list[Path] = (),
    every: int = 1,
) -> dict:
    """Every detector on the test part of each named real set and on each video, in one JSON."""
    result: dict = {
        "conf_threshold": conf,
        "iou_threshold": iou,
        "models": {d.label: {"path": str(d.path), "class_map": d.class_map} for d in detectors},
        "sets": {},
        "videos": {},
    }
    for name in sets:
        real_set = REAL_SETS[name]
        images = real_set.images(data_root, "test")
        if not images:
            raise RealEvalError(f"{data_root / real_set.root}: no test images of real set {name}")
        result["sets"][name] = {
            "split": "test",
            "images": len(images),
            "labelled": [c for c in CLASSES if c in real_set.labelled],
            "models": {d.label: evaluate_set(d, real_set, images, conf, iou) for d in detectors},
        }
    for video in videos:
        result["videos"][video.name] = {
            "path": str(video),
            "every": every,
            "models": {d.label: {"footage": evaluate_video(d, video, every, conf, iou)} for d in detectors},
        }
    return result
