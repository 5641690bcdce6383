"""`feixian plates train`: train the plate reader (a small CNN read out with CTC) on rendered plates and
export it to ONNX for `pipeline.plates`.

The network sees a 32x128 grey crop and emits, for each of 32 columns, a distribution over the blank
and every plate character; greedy CTC decoding turns that into text. The ONNX file carries the
character set, so the runtime needs nothing from this package. Training is offline and deterministic from
`--seed`; the validation set is drawn from `seed + 1` and is never trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from training.plates.render import CHARSET, HEIGHT, WIDTH, sample_batch

CHUNK = 2000  # crops rendered per worker task


def build_network(n_classes: int):
    """CNN from 32x128 down to one row of 32 columns, then a 1-D conv over columns: (B, 32, n_classes)
    log-probabilities."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    class PlateNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                *block(1, 16),
                nn.MaxPool2d(2),  # 16x64
                *block(16, 32),
                nn.MaxPool2d(2),  # 8x32
                *block(32, 64),
                *block(64, 64),
                nn.MaxPool2d((2, 1)),  # 4x32
                *block(64, 96),
                nn.MaxPool2d((2, 1)),  # 2x32
                nn.Conv2d(96, 128, (2, 1), bias=False),
                nn.BatchNorm2d(128),
                nn.ReLU(inplace=True),  # 1x32
            )
            self.head = nn.Sequential(
                nn.Conv1d(128, 128, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Dropout(0.1),
                nn.Conv1d(128, n_classes, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.features(x / 255.0 - 0.5).squeeze(2)
            return self.head(x).permute(0, 2, 1).log_softmax(-1)

    return PlateNet()


def render_set(seed: int, n: int, workers: int) -> tuple[np.ndarray, list[str]]:
    """`n` crops, deterministic from `seed` whatever the number of workers (one sub-seed per chunk)."""
    tasks = [(seed * 100_003 + k, min(CHUNK, n - k * CHUNK)) for k in range((n + CHUNK - 1) // CHUNK)]
    with Pool(workers) as pool:
        parts = pool.starmap(sample_batch, tasks)
    return np.concatenate([p[0] for p in parts]), [t for p in parts for t in p[1]]


def greedy_decode(scores: np.ndarray, charset: str) -> list[str]:
    """CTC best path: most likely class per column, repeats merged, blanks (0) dropped."""
    best = scores.argmax(-1)
    out = []
    for row in best:
        keep = np.r_[True, row[1:] != row[:-1]] & (row > 0)
        out.append("".join(charset[i - 1] for i in row[keep]))
    return out


def train_reader(
    out: Path, samples: int, epochs: int, seed: int, batch: int = 128, workers: int = 2, version: str = "dev"
) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    t0 = time.monotonic()
    index = {c: i + 1 for i, c in enumerate(CHARSET)}
    images, texts = render_set(seed, samples, workers)
    val_images, val_texts = render_set(seed + 1, max(500, samples // 20), workers)
    render_s = time.monotonic() - t0
    print(f"rendered {len(texts)} training and {len(val_texts)} validation crops in {render_s:.0f} s", file=sys.stderr)

    net = build_network(len(CHARSET) + 1)
    steps = epochs * (len(texts) // batch)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    targets = torch.tensor([[index[c] for c in t] for t in texts])
    x_all = torch.from_numpy(images).unsqueeze(1).float()
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(texts), generator=gen)
        running = 0.0
        for k in range(len(texts) // batch):
            idx = order[k * batch : (k + 1) * batch]
            log_probs = net(x_all[idx]).permute(1, 0, 2)  # (T, B, C) for CTC
            loss = ctc(
                log_probs,
                targets[idx],
                torch.full((len(idx),), log_probs.shape[0], dtype=torch.long),
                torch.full((len(idx),), targets.shape[1], dtype=torch.long),
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
        acc = _accuracy(net, val_images, val_texts)
        print(
            f"epoch {epoch + 1}/{epochs}: loss {running / max(1, k + 1):.3f}, validation exact {acc:.3f} "
            f"({time.monotonic() - t0:.0f} s)",
            file=sys.stderr,
        )
    seconds = time.monotonic() - t0
    _export(net, out, {"charset": CHARSET, "version": version, "seed": str(seed), "samples": str(samples)})
    return {
        "model": str(out),
        "samples": samples,
        "epochs": epochs,
        "seed": seed,
        "validation_exact": round(acc, 4),
        "validation_size": len(val_texts),
        "seconds": round(seconds, 1),
        "render_seconds": round(render_s, 1),
    }


def _accuracy(net, images: np.ndarray, texts: list[str]) -> float:
    import torch

    net.eval()
    with torch.no_grad():
        probs = net(torch.from_numpy(images).unsqueeze(1).float()).numpy()
    return float(np.mean([a == b for a, b in zip(greedy_decode(probs, CHARSET), texts, strict=True)]))


def _export(net, out: Path, metadata: dict[str, str]) -> None:
    import torch

    from training.train import stamp_onnx_metadata

    net.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        torch.zeros(1, 1, HEIGHT, WIDTH),
        str(out),
        input_names=["images"],
        output_names=["log_probs"],
        dynamic_axes={"images": {0: "batch"}, "log_probs": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    stamp_onnx_metadata(out, {**metadata, "task": "plate-ocr", "input": f"{HEIGHT}x{WIDTH} grey"})


def register(plates: argparse._SubParsersAction) -> None:
    """Add `train` to the `feixian plates` commands."""
    p = plates.add_parser("train", help="train the plate reader on rendered plates, export ONNX")
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. models/feixian-plate-v1.onnx")
    p.add_argument("--samples", type=int, default=120_000, help="rendered training crops")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="processes rendering crops")
    p.add_argument("--version", default="dev", help="model version recorded in the ONNX metadata")
    p.add_argument("--summary", default=None, help="write a JSON summary here")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.samples < args.batch:
        print(f"feixian plates train: --samples must be at least --batch ({args.batch})", file=sys.stderr)
        return 2
    summary = train_reader(Path(args.out), args.samples, args.epochs, args.seed, args.batch, args.workers, args.version)
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
