"""`feixian plates eval`: how often the whole plate reader (colour localiser + network) reads a plate
exactly, by the plate's width on screen, on rendered vehicle rears never used in training.

>>> r = evaluate_reader("models/feixian-plate-v1.onnx", seed=5, per_width=20, widths=(60,))  # doctest: +SKIP
>>> sorted(r["by_width"]["60"])  # doctest: +SKIP
['exact', 'misread', 'n', 'unread']
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from feixian.config import PlateSettings
from pipeline.plates import PlateReader, PlateRecognizer, format_plate
from training.plates.render import vehicle_rear

WIDTHS = (40, 50, 60, 80, 120, 160)


def evaluate_reader(
    model: str | Path,
    seed: int,
    per_width: int,
    widths: tuple[int, ...] = WIDTHS,
    min_confidence: float = PlateSettings().min_confidence,
) -> dict:
    """Per plate width (px): the share read exactly, misread (a wrong plate: worse than none) and unread."""
    reader = PlateReader(PlateRecognizer(model), min_confidence)
    rng = np.random.default_rng(seed)
    by_width = {}
    for width in widths:
        exact = misread = 0
        for _ in range(per_width):
            image, text, _ = vehicle_rear(rng, width)
            read = reader.read_image(image)
            exact += read is not None and read.text == format_plate(text)
            misread += read is not None and read.text != format_plate(text)
        by_width[str(width)] = {
            "n": per_width,
            "exact": round(exact / per_width, 4),
            "misread": round(misread / per_width, 4),
            "unread": round((per_width - exact - misread) / per_width, 4),
        }
    return {"model": Path(model).name, "seed": seed, "min_confidence": reader.min_confidence, "by_width": by_width}


def register(plates: argparse._SubParsersAction) -> None:
    """Add `eval` to the `feixian plates` commands."""
    p = plates.add_parser("eval", help="exact-read rate by plate width on rendered vehicles, JSON")
    p.add_argument("--model", required=True, help="plate reader ONNX")
    p.add_argument("--seed", type=int, default=5, help="rendering seed (training uses 0 and 1)")
    p.add_argument("--per-width", type=int, default=200, help="vehicles rendered per plate width")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=PlateSettings().min_confidence,
        help="as plates.min_confidence in the settings (default: its default)",
    )
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        print(f"feixian plates eval: model not found: {args.model}", file=sys.stderr)
        return 2
    if not 0 < args.min_confidence < 1:
        print("feixian plates eval: --min-confidence must be between 0 and 1", file=sys.stderr)
        return 2
    result = evaluate_reader(args.model, args.seed, args.per_width, min_confidence=args.min_confidence)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
