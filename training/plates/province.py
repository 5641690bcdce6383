"""`feixian plates train-province`: train the province glyph classifier (`pipeline.plate_province`) and export
it to ONNX.

It learns the 31 province glyphs from the province cells of rendered plates of all three colours (each
province equally often, the plate 50-220 px wide on screen, rectified the way the reader rectifies) and of
the first PROVINCE_TRAINED real calibration crops (`training/plates/real.py`; mostly 皖, the real plate
typeface). Seeds: training crops from `seed`, validation from `seed + 1` (default 11 and 12); evaluation
renders from 5 (and 1005 for vehicle rears) and calibration from 7, so none of those is ever trained on, nor
the held-out 300 real crops, nor the real calibration crops the check's thresholds are chosen on.

>>> cells, labels = rendered_cells(11, 3)  # doctest: +SKIP
>>> cells.shape, labels.dtype  # doctest: +SKIP
((3, 32, 32), dtype('int64'))
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

from pipeline.plate_province import CELL_SIZE, province_cell
from pipeline.plates import PROVINCES
from training.plates.real import BLUE_CROPS, load_crops, province_training_crops, split_crops
from training.plates.render import KINDS, localised_crop, random_green_text, random_text

CROP_SIZE = (192, 48)  # the shipped recogniser's crop size (PlateRecognizer.crop_size), w x h
# The plate alone within CROP_SIZE (rectify's margins: 5 % of the length each end, 10 % of the height), and the
# size the real crops are cut to: half the rendered cells are cut this way, so that a tight crop is no sign of
# 皖, the province of nearly every real crop.
PLATE_ALONE = (
    slice(round(48 * 0.1 / 1.2), round(48 * 1.1 / 1.2)),
    slice(round(192 * 0.05 / 1.1), round(192 * 1.05 / 1.1)),
)
REAL_SIZE = (94, 24)
TIGHT_SHARE = 0.5
CHUNK = 1000  # crops rendered per worker task
# Jittered copies of each real crop of another province than 皖; a 皖 crop is taken once: 385 of the 400 are
# 皖, and more of them teach that a real-looking crop is 皖 whatever its glyph.
REAL_COPIES = 6


def jitter(rng: np.random.Generator, crop: np.ndarray) -> np.ndarray:
    """The crop as another localisation might have cut it: scaled 0.85-1.1, shifted by up to 5 % of its
    size, turned up to 3 degrees, the border repeated; so tight real crops and rectified ones with margins
    both look like the cells the runtime sees."""
    h, w = crop.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.normal(0, 1.5), rng.uniform(0.85, 1.1))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
    return cv2.warpAffine(crop, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _render_chunk(task: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    seed, n = task
    rng = np.random.default_rng(seed)
    cells, labels = [], []
    for k in range(n):
        kind = KINDS[k % len(KINDS)]
        label = int(rng.integers(len(PROVINCES)))
        tail = (random_green_text(rng) if kind == "green" else random_text(rng))[1:]
        crop, _ = localised_crop(rng, int(rng.integers(50, 221)), kind, CROP_SIZE, PROVINCES[label] + tail)
        if rng.random() < TIGHT_SHARE:
            crop = cv2.resize(crop[PLATE_ALONE], REAL_SIZE, interpolation=cv2.INTER_AREA)
        cells.append(province_cell(jitter(rng, crop)))
        labels.append(label)
    return np.stack(cells), np.array(labels, np.int64)


def rendered_cells(seed: int, n: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`n` province cells of rendered plates and their province indices, deterministic from `seed` whatever
    the number of workers (one sub-seed per chunk)."""
    tasks = [(seed * 100_003 + k, min(CHUNK, n - k * CHUNK)) for k in range((n + CHUNK - 1) // CHUNK)]
    if workers > 1:
        with Pool(workers) as pool:
            parts = pool.map(_render_chunk, tasks)
    else:
        parts = [_render_chunk(t) for t in tasks]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def real_cells(seed: int, root: Path = BLUE_CROPS, copies: int = REAL_COPIES) -> tuple[np.ndarray, np.ndarray]:
    """`copies` jittered province cells of each real crop the classifier may learn from (one of a 皖 crop)."""
    rng = np.random.default_rng(seed)
    cells, labels = [], []
    for path, text in province_training_crops(split_crops(load_crops(root))[0]):
        crop = cv2.imread(str(path))
        for _ in range(1 if text[0] == "皖" else copies):
            cells.append(province_cell(jitter(rng, crop)))
            labels.append(PROVINCES.index(text[0]))
    return np.stack(cells), np.array(labels, np.int64)


def build_network(n_classes: int):
    """A small CNN, CELL_SIZE square grey cell (0-255) in, (B, n_classes) log-probabilities out. Each cell is
    standardised inside the network: plates are white on blue or black on yellow and green, lit anyhow."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    class ProvinceNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                *block(1, 24),
                nn.MaxPool2d(2),  # 16
                *block(24, 48),
                nn.MaxPool2d(2),  # 8
                *block(48, 64),
                *block(64, 64),
                nn.MaxPool2d(2),  # 4
                *block(64, 96),
                nn.AdaptiveAvgPool2d(1),
            )
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(96, n_classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean = x.mean(dim=(2, 3), keepdim=True)
            std = x.std(dim=(2, 3), keepdim=True)
            return torch.log_softmax(self.head(self.features((x - mean) / (std + 8.0))), dim=-1)

    return ProvinceNet()


def train_classifier(
    out: Path, samples: int, epochs: int, seed: int = 11, batch: int = 128, workers: int = 2, version: str = "dev"
) -> dict:
    """Train on `samples` rendered cells plus the real ones, export to `out`; a summary with the validation
    accuracy on rendered cells of `seed + 1`."""
    import torch

    t0 = time.monotonic()
    torch.manual_seed(seed)
    images, labels = rendered_cells(seed, samples, workers)
    real_images, real_labels = real_cells(seed)
    images, labels = np.concatenate([images, real_images]), np.concatenate([labels, real_labels])
    val_images, val_labels = rendered_cells(seed + 1, max(620, samples // 10), workers)
    render_s = time.monotonic() - t0
    net = build_network(len(PROVINCES))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * (len(labels) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=max(1, steps))
    x_all, y_all = torch.from_numpy(images).unsqueeze(1).float(), torch.from_numpy(labels)
    gen = torch.Generator().manual_seed(seed)
    accuracy = 0.0
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(labels), generator=gen)
        for k in range(len(labels) // batch):
            idx = order[k * batch : (k + 1) * batch]
            loss = torch.nn.functional.nll_loss(net(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        accuracy = _accuracy(net, val_images, val_labels)
        print(f"epoch {epoch + 1}/{epochs}: validation accuracy {accuracy:.4f}", file=sys.stderr)
    _export(net, out, {"version": version, "seed": str(seed), "samples": str(samples)})
    return {
        "model": str(out),
        "rendered_samples": samples,
        "real_samples": len(real_labels),
        "epochs": epochs,
        "seed": seed,
        "validation_accuracy": round(accuracy, 4),
        "validation_size": len(val_labels),
        "seconds": round(time.monotonic() - t0, 1),
        "render_seconds": round(render_s, 1),
    }


def _accuracy(net, images: np.ndarray, labels: np.ndarray) -> float:
    import torch

    net.eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(images).unsqueeze(1).float()).argmax(-1).numpy()
    return float(np.mean(predicted == labels))


def _export(net, out: Path, metadata: dict[str, str]) -> None:
    import torch

    from training.train import stamp_onnx_metadata

    net.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        torch.zeros(1, 1, CELL_SIZE, CELL_SIZE),
        str(out),
        input_names=["cells"],
        output_names=["log_probs"],
        dynamic_axes={"cells": {0: "batch"}, "log_probs": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    stamp_onnx_metadata(out, {**metadata, "task": "plate-province", "classes": PROVINCES})


def register(plates: argparse._SubParsersAction) -> None:
    """Add `train-province` to the `feixian plates` commands."""
    p = plates.add_parser("train-province", help="train the province glyph classifier, export ONNX")
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. models/feixian-province-v1.onnx")
    p.add_argument("--samples", type=int, default=15_000, help="rendered training crops")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=11, help="training seed (at least 1); validation uses seed + 1")
    p.add_argument("--workers", type=int, default=2, help="processes rendering crops")
    p.add_argument("--version", default="dev", help="model version recorded in the ONNX metadata")
    p.add_argument("--summary", default=None, help="write a JSON summary here")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.seed < 1:
        # Chunk k renders from seed * 100003 + k: from seed 0 that is 5 and 7, the evaluation's and calibration's.
        print("feixian plates train-province: --seed must be at least 1", file=sys.stderr)
        return 2
    summary = train_classifier(
        Path(args.out), args.samples, args.epochs, args.seed, workers=args.workers, version=args.version
    )
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
