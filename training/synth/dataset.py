"""The YOLO image dataset: `images/{train,val}`, `labels/{train,val}` and `data.yaml`.

Image `index` of run `seed` draws all its randomness from SeedSequence([seed, index]): runs are
reproducible, any image can be regenerated alone, and distinct seeds never share an image (file names carry
the seed too). Frames sampled from training scenes (`training.synth.frames`) may join the images,
FRAMES_PER_SCENE from each scene, all of a scene in one split.

>>> img, labels = generate_image(seed=1, index=0, size=(320, 180))
>>> img.shape
(180, 320, 3)
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from pipeline.taxonomy import CLASSES
from training.synth.frames import scene_frames
from training.synth.scene import Label, render_sample

VAL_EVERY = 10  # every tenth image (index 0, 10, 20, ...) and scene goes to validation
JPEG_QUALITY = 92
FRAMES_PER_SCENE = 12  # few enough that a set of frames spans many streets, cameras and weathers
HIDDEN_PILE_IMAGES = 0x41DE  # tags the SeedSequence of hidden-pile images
HIDDEN_PILES = (1, 4)  # piles partly behind a chair, stool or table in such an image: 1 to 3


def image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def generate_image(seed: int, index: int, size: tuple[int, int]) -> tuple[np.ndarray, list[Label]]:
    """Image `index` of the run with `seed`: BGR pixels and its labels."""
    return render_sample(image_rng(seed, index), size)


def generate_hidden_pile_image(seed: int, index: int, size: tuple[int, int]) -> tuple[np.ndarray, list[Label]]:
    """Hidden-pile image `index` of the run with `seed`: a street scene with HIDDEN_PILES more piles of goods,
    each partly behind a chair, stool or table (a random stream of its own, so the plain images do not change)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, HIDDEN_PILE_IMAGES, index]))
    return render_sample(rng, size, hidden_piles=int(rng.integers(*HIDDEN_PILES)))


def split_of(index: int) -> str:
    return "val" if index % VAL_EVERY == 0 else "train"


def write_dataset(
    out: Path,
    seed: int,
    count: int,
    size: tuple[int, int],
    progress: bool = True,
    workers: int = 1,
    frames: int = 0,
    hidden_piles: int = 0,
) -> Path:
    """Write `count` labelled images, `frames` labelled scene frames and `hidden_piles` hidden-pile images
    under `out`; return its data.yaml.

    Ultralytics trains on `train` and validates on `val`; every image is also listed under `test`, since a
    generated set is unseen by any model not trained on its seed: `feixian eval` scores all of it.
    `workers` processes render in parallel; each image depends only on (seed, index) and each scene's
    frames only on (seed, scene), so the set is the same whatever their number.
    """
    if min(count, frames, hidden_piles) < 0 or count + frames + hidden_piles < 1:
        raise ValueError(
            f"need at least one image or frame, got {count} images, {frames} frames, {hidden_piles} hidden-pile images"
        )
    if workers < 1:
        raise ValueError(f"need at least one worker, got {workers}")
    out = Path(out)
    for kind in ("images", "labels"):
        for split in ("train", "val"):
            (out / kind / split).mkdir(parents=True, exist_ok=True)
    jobs: list[Callable[[], int]] = [partial(_write_image, out, seed, index, size) for index in range(count)]
    jobs += [partial(_write_hidden_pile_image, out, seed, index, size) for index in range(hidden_piles)]
    for scene in range(-(-frames // FRAMES_PER_SCENE)):
        n = min(FRAMES_PER_SCENE, frames - scene * FRAMES_PER_SCENE)
        jobs.append(partial(_write_scene_frames, out, seed, scene, size, n))
    bar = tqdm(total=count + frames + hidden_piles, desc="synth images", unit="img", disable=not progress)
    if workers == 1:
        for job in jobs:
            bar.update(job())
    else:
        # spawn, not fork: a forked child inherits whatever threads the parent runs (ONNX Runtime, tqdm).
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for written in pool.imap_unordered(_run, jobs, chunksize=4):
                bar.update(written)
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


def _run(job: Callable[[], int]) -> int:
    return job()


def _write_image(out: Path, seed: int, index: int, size: tuple[int, int]) -> int:
    img, labels = generate_image(seed, index, size)
    _save(out, split_of(index), f"s{seed}_{index:06d}", img, labels)
    return 1


def _write_hidden_pile_image(out: Path, seed: int, index: int, size: tuple[int, int]) -> int:
    img, labels = generate_hidden_pile_image(seed, index, size)
    _save(out, split_of(index), f"s{seed}_hidden{index:06d}", img, labels)
    return 1


def _write_scene_frames(out: Path, seed: int, scene: int, size: tuple[int, int], count: int) -> int:
    for k, img, labels in scene_frames(seed, scene, size, count):
        _save(out, split_of(scene), f"s{seed}_scene{scene:05d}_{k:04d}", img, labels)
    return count


def _save(out: Path, split: str, stem: str, img: np.ndarray, labels: list[Label]) -> None:
    h, w = img.shape[:2]
    cv2.imwrite(str(out / "images" / split / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    text = "".join(label.yolo(w, h) + "\n" for label in labels)
    (out / "labels" / split / f"{stem}.txt").write_text(text, encoding="ascii")
