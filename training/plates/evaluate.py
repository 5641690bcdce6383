"""`feixian plates eval`: how often the plate reader names the right plate, names a wrong one, or withholds,
as JSON:

- `real_held_out`: the 300 held-out real blue crops (`training/plates/real.py`), read by the recogniser at
  the reporting thresholds: exact, wrong reported (a case against the wrong party), withheld;
- `ccpd`: the three real CCPD photos, through the whole reader (colour localiser + recogniser);
- `rendered`: blue, yellow and green plates (seed 5; calibration uses 7) by width on screen, as localised
  crops (the recogniser alone) and on vehicle rears (the whole reader); `legible` sums the crops from
  `LEGIBLE_WIDTH` px up, the width a checkpoint camera gives a plate;
- `calibration`: the thresholds the calibration part of the real crops and rendered plates suggest
  (`training/plates/calibrate.py`), to compare with those used.

>>> r = evaluate_reader("models/feixian-plate-v2.onnx", seed=5, per_width=20)  # doctest: +SKIP
>>> sorted(r["real_held_out"])  # doctest: +SKIP
['exact', 'n', 'withheld', 'wrong_reported']
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from feixian.config import PlateSettings
from pipeline.plates import PlateReader, PlateRecognizer, format_plate
from training.plates.calibrate import Reading, calibrate, read_real, render_reads
from training.plates.real import BLUE_CROPS, CCPD_EXPECTED, CCPD_PHOTOS, load_crops, split_crops
from training.plates.render import KINDS, vehicle_rear

WIDTHS = (60, 80, 100, 120, 160, 200)
LEGIBLE_WIDTH = 100


def score(reader: PlateReader, truths: Sequence[str], reads: Sequence[Reading]) -> dict:
    """Shares of plates read exactly, read wrong but reported, and withheld, at the reader's thresholds."""
    exact = wrong = 0
    for truth, (text, chars) in zip(truths, reads, strict=True):
        if reader.accept(text, chars) is not None:
            exact += text == truth
            wrong += text != truth
    n = max(1, len(truths))
    return {
        "n": len(truths),
        "exact": round(exact / n, 4),
        "wrong_reported": round(wrong / n, 4),
        "withheld": round((len(truths) - exact - wrong) / n, 4),
    }


def evaluate_ccpd(reader: PlateReader, folder: Path = CCPD_PHOTOS) -> list[dict]:
    """Each CCPD photo's expected and read text through the whole reader."""
    out = []
    for name, expected in CCPD_EXPECTED.items():
        read = reader.read_image(cv2.imread(str(folder / name)))
        out.append(
            {
                "file": name,
                "expected": format_plate(expected),
                "read": None if read is None else read.text,
                "confidence": None if read is None else round(read.confidence, 4),
                "exact": read is not None and read.text == format_plate(expected),
            }
        )
    return out


def evaluate_rendered(reader: PlateReader, seed: int, per_width: int, widths: Sequence[int] = WIDTHS) -> dict:
    """Per kind: localised crops by width and from LEGIBLE_WIDTH up, and whole vehicle rears by width."""
    crops = render_reads(reader.recognizer, seed, per_width, widths)
    rng = np.random.default_rng(seed + 1000)
    out = {}
    for kind in KINDS:
        by_width = {str(w): score(reader, *crops[kind][w]) for w in widths}
        legible = [crops[kind][w] for w in widths if w >= LEGIBLE_WIDTH]
        rears = {}
        for width in widths:
            truths, found = [], []
            for _ in range(per_width):
                image, text, _ = vehicle_rear(rng, width, kind)
                read = reader.read_image(image)
                truths.append(text)
                # The read passed the thresholds already; its written form carries the dot.
                found.append(("", [0.0]) if read is None else (read.text.replace("·", ""), [read.confidence]))
            rears[str(width)] = score(reader, truths, found)
        out[kind] = {
            "crops_legible": score(reader, [t for ts, _ in legible for t in ts], [r for _, rs in legible for r in rs]),
            "crops_by_width": by_width,
            "vehicle_rears_by_width": rears,
        }
    return out


def evaluate_reader(
    model: str | Path,
    seed: int,
    per_width: int,
    min_confidence: float = PlateSettings().min_confidence,
    province_confidence: float = PlateSettings().province_confidence,
    crops_root: Path = BLUE_CROPS,
) -> dict:
    """The figures above, for `model` at the given thresholds."""
    reader = PlateReader(PlateRecognizer(model, threads=1), min_confidence, province_confidence)
    result: dict = {
        "model": Path(model).name,
        "min_confidence": min_confidence,
        "province_confidence": province_confidence,
    }
    if (crops_root / "labels.csv").is_file():
        calibration, held_out = split_crops(load_crops(crops_root))
        reads = read_real(reader.recognizer, held_out)
        result["real_held_out"] = score(reader, [t for _, t in held_out], reads)
        result["calibration"] = calibrate(reader.recognizer, calibration)
    if CCPD_PHOTOS.is_dir():
        result["ccpd"] = evaluate_ccpd(reader)
    result["rendered"] = {"seed": seed, "per_width": per_width, **evaluate_rendered(reader, seed, per_width)}
    return result


def register(plates: argparse._SubParsersAction) -> None:
    """Add `eval` to the `feixian plates` commands."""
    p = plates.add_parser("eval", help="exact, wrong-reported and withheld rates on real and rendered plates, JSON")
    p.add_argument("--model", required=True, help="plate reader ONNX")
    p.add_argument("--seed", type=int, default=5, help="rendering seed (calibration uses 7)")
    p.add_argument("--per-width", type=int, default=100, help="rendered plates per colour and width")
    defaults = PlateSettings()
    for name in ("min_confidence", "province_confidence"):
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=getattr(defaults, name),
            help=f"as plates.{name} in the settings (default: its default)",
        )
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        print(f"feixian plates eval: model not found: {args.model}", file=sys.stderr)
        return 2
    if not (0 < args.min_confidence < 1 and 0 <= args.province_confidence < 1):
        print("feixian plates eval: the confidences must be between 0 and 1", file=sys.stderr)
        return 2
    result = evaluate_reader(args.model, args.seed, args.per_width, args.min_confidence, args.province_confidence)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
