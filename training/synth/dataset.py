"""The YOLO image dataset: `images/{train,val}`, `labels/{train,val}` and `data.yaml`.

Image `index` of run `seed` draws all its randomness from SeedSequence([seed, index]): runs are
reproducible, any image can be regenerated alone, and distinct seeds never share an image (file names carry
the seed too).

>>> img, labels = generate_image(seed=1, index=0, size=(320, 180))
>>> img.shape
(180, 320, 3)
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from pipeline.taxonomy import CLASSES
from training.synth.scene import Label, render_sample

VAL_EVERY = 10  # every tenth image (index 0, 10, 20, ...) goes to validation
JPEG_QUALITY = 92


def image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def generate_image(seed: int, index: int, size: tuple[int, int]) -> tuple[np.ndarray, list[Label]]:
    """Image `index` of the run with `seed`: BGR pixels and its labels."""
    return render_sample(image_rng(seed, index), size)


def split_of(index: int) -> str:
    return "val" if index % VAL_EVERY == 0 else "train"


def write_dataset(
    out: Path, seed: int, count: int, size: tuple[int, int], progress: bool = True, workers: int = 1
) -> Path:
    """Write `count` labelled images under `out` and return the path of its data.yaml.

    Ultralytics trains on `train` and validates on `val`; every image is also listed under `test`, since a
    generated set is unseen by any model not trained on its seed: `feixian eval` scores all of it.
    `workers` processes render in parallel; each image depends only on (seed, index), so the set is the
    same whatever their number.
    """
    if count < 1:
        raise ValueError(f"need at least one image, got {count}")
    if workers < 1:
        raise ValueError(f"need at least one worker, got {workers}")
    out = Path(out)
    for kind in ("images", "labels"):
        for split in ("train", "val"):
            (out / kind / split).mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, index, size) for index in range(count)]
    bar = tqdm(total=count, desc="synth images", unit="img", disable=not progress)
    if workers == 1:
        for job in jobs:
            _write_image(job)
            bar.update()
    else:
        # spawn, not fork: a forked child inherits whatever threads the parent runs (ONNX Runtime, tqdm).
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_image, jobs, chunksize=16):
                bar.update()
    bar.close()
    data = {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "test": ["images/train", "images/val"],
        "names": dict(enumerate(CLASSES)),
    }
    target = out / "data.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def _write_image(job: tuple[Path, int, int, tuple[int, int]]) -> None:
    out, seed, index, (w, h) = job
    img, labels = generate_image(seed, index, (w, h))
    split, stem = split_of(index), f"s{seed}_{index:06d}"
    cv2.imwrite(str(out / "images" / split / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    text = "".join(label.yolo(w, h) + "\n" for label in labels)
    (out / "labels" / split / f"{stem}.txt").write_text(text, encoding="ascii")
