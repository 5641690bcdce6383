"""`feixian detect PATH...`: what the deployed settings see in a user's own photos or video, as JSON lines.

A bureau tries feixian on its own footage before configuring a point: every image, and every `--every`-th
frame of every video, goes through the settings' detector at its `model.conf_threshold` (the score an
object must reach to start a track or be judged, so exactly what could raise a case), and trucks through
its plate reader. One JSON object per image or sampled frame on stdout:

    {"source": "street.jpg", "frame": null, "detections": [{"class": "truck_uncovered",
     "category": "vehicle", "subtype": "uncovered", "confidence": 0.71, "box": [x1, y1, x2, y2],
     "plate": {"text": "沪A·12345", "confidence": 0.93} or null}, ...]}

`frame` is the frame index in a video, null for an image. `--annotate DIR` writes a JPEG copy with the
boxes drawn for each line: `DIR/<stem>.jpg` for an image, `DIR/<stem>_<frame, 6 digits>.jpg` for each
sampled video frame (a name already written in the run gets `-2`, `-3` ... appended). An input that cannot
be read is reported on stderr by name, the others are still processed, and the exit code is 2.

>>> run_detect(load_config("configs/default.yaml"), ["street.jpg", "footage/"], 25, None)  # doctest: +SKIP
{"source": "street.jpg", "frame": null, "detections": [...]}
0
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import supervision as sv
from PIL import Image

from feixian.config import Config, load_config
from pipeline.taxonomy import OCCUPATION_CLASSES, TRUCK_CLASSES

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".ts", ".m4v", ".mpg", ".mpeg", ".flv"})


class InputError(ValueError):
    """An input path is missing, or not a readable image or video."""


def expand(paths: list[str]) -> Iterator[Path]:
    """Files as given, and each directory's images and videos (not its subfolders), sorted by name."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
        else:
            yield path


def read_image(path: Path) -> np.ndarray:
    """The image's BGR pixels, decoded as the pipeline decodes frames (OpenCV).

    OpenCV decodes a truncated JPEG into a half-grey picture with only a warning, so the file is first
    decoded in full by Pillow, which refuses it: a broken photo is an error, not an empty street.
    """
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from e
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    return bgr


def frames_of(path: Path, every: int) -> Iterator[tuple[int | None, np.ndarray]]:
    """(frame index or None, BGR) for an image, or for every `every`-th frame of a video (0, every, ...)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield None, read_image(path)
        return
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"{path}: not a readable image or video")
        index, sampled = 0, 0
        # grab() only demuxes and decodes; retrieve() converts the frames that are looked at.
        while cap.grab():
            if index % every == 0:
                ok, bgr = cap.retrieve()
                if not ok:
                    raise InputError(f"{path}: frame {index} cannot be decoded")
                sampled += 1
                yield index, bgr
            index += 1
        if sampled == 0:
            raise InputError(f"{path}: no frame could be decoded")
    finally:
        cap.release()


def category_of(class_name: str) -> tuple[str | None, str | None]:
    """The violation category and subtype a detector class stands for: every truck is a vehicle (subtype
    dirty, uncovered or None for a clean, covered one), occupation items carry their subtype.

    >>> category_of("truck"), category_of("truck_dirty"), category_of("cart"), category_of("person")
    (('vehicle', None), ('vehicle', 'dirty'), ('occupation', 'stall'), (None, None))
    """
    if class_name in TRUCK_CLASSES:
        return "vehicle", TRUCK_CLASSES[class_name]
    if class_name in OCCUPATION_CLASSES:
        return "occupation", OCCUPATION_CLASSES[class_name]
    return None, None


def describe(bgr: np.ndarray, dets: sv.Detections, plate_reader) -> list[dict]:
    """The JSON records of one frame's detections; trucks get the plate the reader reports (or null)."""
    out = []
    for box, conf, name in zip(dets.xyxy, dets.confidence, dets.data["class_name"], strict=True):
        category, subtype = category_of(str(name))
        plate = None
        if category == "vehicle" and plate_reader is not None:
            read = plate_reader.read_image(bgr, box.tolist())
            if read is not None:
                plate = {"text": read.text, "confidence": round(float(read.confidence), 4)}
        out.append(
            {
                "class": str(name),
                "category": category,
                "subtype": subtype,
                "confidence": round(float(conf), 4),
                "box": [round(float(v), 1) for v in box],
                "plate": plate,
            }
        )
    return out


class Annotator:
    """Writes each looked-at frame, boxes and labels drawn, as a JPEG under `out_dir`."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._boxes = sv.BoxAnnotator(thickness=2)
        self._labels = sv.LabelAnnotator(text_scale=0.45, text_padding=4)
        self._used: set[str] = set()

    def write(self, source: Path, frame: int | None, bgr: np.ndarray, dets: sv.Detections) -> Path:
        stem = source.stem if frame is None else f"{source.stem}_{frame:06d}"
        name, n = stem, 1
        while name in self._used:  # two inputs of one name (from two folders) keep both copies
            n += 1
            name = f"{stem}-{n}"
        self._used.add(name)
        labels = [f"{c} {s:.2f}" for c, s in zip(dets.data["class_name"], dets.confidence, strict=True)]
        image = self._labels.annotate(self._boxes.annotate(bgr.copy(), dets), dets, labels=labels)
        path = self.out_dir / f"{name}.jpg"
        cv2.imwrite(str(path), image)
        return path


def run_detect(config: Config, paths: list[str], every: int, annotate: str | None) -> int:
    """Print one JSON line per image or sampled frame; 2 when any input failed, else 0."""
    from feixian.runtime import Runtime

    runtime = Runtime(config)  # the detector and plate reader built as the pipeline builds them
    # The deployment runs its detector at track_threshold, but only boxes at conf_threshold start tracks
    # or are judged: this is what a user must see.
    detector = runtime.detector_at(config.settings.model.conf_threshold)
    plate_reader = runtime.plate_reader
    annotator = Annotator(Path(annotate)) if annotate else None
    failed = 0
    for path in expand(paths):
        try:
            for frame, bgr in frames_of(path, every):
                dets = detector.detect(bgr)
                record = {"source": str(path), "frame": frame, "detections": describe(bgr, dets, plate_reader)}
                print(json.dumps(record, ensure_ascii=False), flush=True)
                if annotator is not None:
                    annotator.write(path, frame, bgr, dets)
        except InputError as e:
            print(f"feixian detect: {e}", file=sys.stderr, flush=True)
            failed += 1
    return 2 if failed else 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "detect", parents=[common], help="what the deployed detector sees in photos or video, JSON lines"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="images, videos, or folders of them")
    p.add_argument("--every", type=positive_int, default=1, help="look at every N-th video frame (default 1: all)")
    p.add_argument("--annotate", default=None, metavar="DIR", help="write annotated JPEG copies here")
    p.set_defaults(
        func=lambda args: run_detect(load_config(args.config, args.data_dir), args.paths, args.every, args.annotate)
    )
