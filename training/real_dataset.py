"""`feixian real-data`: the training set of a detector that must work on real footage, and the held-out real
test sets it is judged on.

The training set mixes three sources (written as one YOLO dataset, `data.yaml` naming a list of images):
- real photos (`training.real_sets`, train parts only) with their own labels mapped onto feixian's classes,
  and a COCO teacher's boxes for the COCO-known classes the set does not label (pseudo-labels); every real
  photo is also a negative for the classes only the generator can teach;
- composites: rendered stalls, carts, goods and trucks pasted onto those real photos
  (`training.synth.composite`);
- plain generated street images (`training.synth.dataset`), so the rendered streets the rules were tuned on
  stay known.
The test part of each real set is written apart (`test/<set>/`, its own labels only) and never trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from pipeline.taxonomy import CLASSES
from training.real_sets import COCO80, COCO_KNOWN, COCO_TO_FEIXIAN, REAL_SETS, RealSet
from training.synth.composite import composite
from training.synth.dataset import write_dataset

CLASS_ID = {name: i for i, name in enumerate(CLASSES)}
TEACHER_CONF = 0.4  # a teacher box below this is not trusted as a label
COMPOSITE_SIZE = (640, 360)


REAL_TRAIN = "real-train"  # the folder of the real training photos in a built set


def is_real_photo(image: Path) -> bool:
    """Whether a training image of a built set is one of its real photos (not a composite or a generated image).

    >>> is_real_photo(Path("set/real-train/images/coco128-000000000009.jpg"))
    True
    >>> is_real_photo(Path("set/composites/images/composite-21-00000.jpg"))
    False
    """
    return image.parent.parent.name == REAL_TRAIN


class RealDataError(RuntimeError):
    """The shared data or the teacher is missing."""


def teacher_boxes(teacher, image: Path, wanted: frozenset[str]) -> list[tuple[str, tuple[float, ...]]]:
    """The COCO teacher's boxes of feixian classes in `wanted`, as (class, normalised cx, cy, w, h)."""
    if not wanted:
        return []
    result = teacher.predict(str(image), conf=TEACHER_CONF, imgsz=640, verbose=False, device="cpu")[0]
    out = []
    for cls, xywhn in zip(result.boxes.cls.tolist(), result.boxes.xywhn.tolist(), strict=True):
        name = COCO_TO_FEIXIAN.get(COCO80[int(cls)])
        if name in wanted:
            out.append((name, tuple(xywhn)))
    return out


def _yolo_lines(labels) -> str:
    return "".join(f"{CLASS_ID[c]} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}\n" for c, b in labels)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    dst.symlink_to(src.resolve())


def write_real_split(
    s: RealSet, data_root: Path, out: Path, split: str, teacher=None
) -> list[tuple[Path, list[tuple[str, tuple[float, ...]]]]]:
    """Link the images of `s`'s `split` under `out/images`, write their labels under `out/labels`; the train
    split gets the teacher's boxes for what the set leaves unlabelled. Returns [(image, labels)]."""
    written = []
    fill = COCO_KNOWN - s.labelled if split == "train" and teacher is not None else frozenset()
    for img in tqdm(s.images(data_root, split), desc=f"{s.name} {split}", unit="img"):
        labels = s.labels(img) + teacher_boxes(teacher, img, fill)
        stem = f"{s.name}-{img.stem}"
        _link(img, out / "images" / f"{stem}.jpg")
        (out / "labels").mkdir(parents=True, exist_ok=True)
        (out / "labels" / f"{stem}.txt").write_text(_yolo_lines(labels))
        written.append((out / "images" / f"{stem}.jpg", labels))
    return written


def write_composites(real: list[tuple[Path, list]], out: Path, count: int, seed: int) -> list[Path]:
    """`count` composites over the real training photos in turn (each a function of seed and index)."""
    paths = []
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for k in tqdm(range(count), desc="composites", unit="img"):
        photo_path, labels = real[k % len(real)]
        photo = cv2.imread(str(photo_path))
        h, w = photo.shape[:2]
        pixel = [
            (CLASS_ID[c], ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
            for c, (cx, cy, bw, bh) in labels
        ]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0, k]))
        img, out_labels = composite(rng, photo, pixel, COMPOSITE_SIZE)
        cw, ch = COMPOSITE_SIZE
        stem = f"composite-{seed}-{k:05d}"
        cv2.imwrite(str(out / "images" / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines = "".join(
            f"{c} {(x0 + x1) / 2 / cw:.6f} {(y0 + y1) / 2 / ch:.6f} {(x1 - x0) / cw:.6f} {(y1 - y0) / ch:.6f}\n"
            for c, (x0, y0, x1, y1) in out_labels
        )
        (out / "labels" / f"{stem}.txt").write_text(lines)
        paths.append(out / "images" / f"{stem}.jpg")
    return paths


def build(
    out: Path,
    data_root: Path,
    teacher_path: Path | None,
    seed: int,
    composites: int,
    synth_images: int,
    real_repeat: int,
    workers: int = 1,
) -> Path:
    """Write the mixed training set and the real test sets under `out`; returns the training `data.yaml`."""
    if not data_root.is_dir():
        raise RealDataError(f"shared data folder not found: {data_root}")
    teacher = None
    if teacher_path is not None:
        if not teacher_path.is_file():
            raise RealDataError(f"teacher checkpoint not found: {teacher_path}")
        from ultralytics import YOLO

        teacher = YOLO(str(teacher_path), task="detect")
    real = []
    for s in REAL_SETS.values():
        real += write_real_split(s, data_root, out / REAL_TRAIN, "train", teacher)
        write_real_split(s, data_root, out / "test" / s.name, "test")
        (out / "test" / s.name / "data.yaml").write_text(
            yaml.safe_dump({"path": ".", "train": "images", "val": "images", "names": dict(enumerate(CLASSES))})
        )
    comp = write_composites(real, out / "composites", composites, seed)
    synth_dir = out / "synth"
    if synth_images:
        write_dataset(synth_dir, seed, synth_images, COMPOSITE_SIZE, workers=workers)
    synth = sorted((synth_dir / "images" / "train").glob("*.jpg")) if synth_images else []
    train = [p for p, _ in real] * real_repeat + comp + synth
    # Ultralytics finds an image's labels by its path (/images/ -> /labels/): a real photo is listed by its
    # link here, never by its target, whose labels beside it are the source set's own class ids.
    (out / "train.txt").write_text("".join(f"{p.absolute()}\n" for p in train))
    val = sorted((synth_dir / "images" / "val").glob("*.jpg")) if synth_images else comp[:50]
    (out / "val.txt").write_text("".join(f"{p.absolute()}\n" for p in val))
    data = {"path": str(out.resolve()), "train": "train.txt", "val": "val.txt", "names": dict(enumerate(CLASSES))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    summary = {
        "real_train_images": len(real),
        "real_repeat": real_repeat,
        "composites": len(comp),
        "synth_images": len(synth),
        "seed": seed,
        "teacher": str(teacher_path) if teacher_path else None,
        "teacher_conf": TEACHER_CONF,
        "test_sets": {s.name: len(s.images(data_root, "test")) for s in REAL_SETS.values()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out / "data.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("real-data", help="build the real + composite + generated training set")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--data-root", default="../shared/data", help="the shared data folder (holds real/)")
    p.add_argument("--teacher", default="../shared/models/yolov8s.pt", help="COCO checkpoint for pseudo-labels")
    p.add_argument("--no-teacher", action="store_true", help="no pseudo-labels")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--composites", type=int, default=900)
    p.add_argument("--synth-images", type=int, default=1500)
    p.add_argument("--real-repeat", type=int, default=2, help="times each real photo is listed")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        path = build(
            Path(args.out),
            Path(args.data_root),
            None if args.no_teacher else Path(args.teacher),
            args.seed,
            args.composites,
            args.synth_images,
            args.real_repeat,
            args.workers,
        )
    except RealDataError as e:
        print(f"feixian real-data: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0
