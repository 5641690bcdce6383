"""`feixian plates eval`: how often the plate reader names the right plate, names a wrong one, or withholds,
as JSON:

- `real_held_out`: the 300 held-out real blue crops (`training/plates/real.py`), read by the recogniser at
  the reporting thresholds: exact, wrong reported (a case against the wrong party), withheld;
- `ccpd`: the three real CCPD photos, through the whole reader (colour localiser + recogniser);
- `rendered`: blue, yellow and green plates (seed 5; calibration uses 7) by width on screen, as localised
  crops (the recogniser alone) and on vehicle rears (the whole reader); `legible` sums the crops from
  `LEGIBLE_WIDTH` px up, the width a checkpoint camera gives a plate;
- `calibration`: the thresholds the calibration part of the real crops and rendered plates suggest
  (`training/plates/calibrate.py`), to compare with those used; with a province classifier
  (`--province-model`), the province check's thresholds too, under `calibration.province_check`.

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
from pipeline.plate_province import ProvinceCheck, ProvinceClassifier
from pipeline.plates import PlateReader, PlateRecognizer, format_plate
from training.plates.calibrate import Reading, calibrate, pooled, read_real, render_reads
from training.plates.real import BLUE_CROPS, CCPD_EXPECTED, CCPD_PHOTOS, load_crops, split_crops
from training.plates.render import KINDS, vehicle_rear

WIDTHS = (60, 80, 100, 120, 160, 200)
LEGIBLE_WIDTH = 100


def score(
    reader: PlateReader, truths: Sequence[str], reads: Sequence[Reading], crops: Sequence[np.ndarray] | None = None
) -> dict:
    """Shares of plates read exactly, read wrong but reported, and withheld, at the reader's thresholds (the
    province check looks at `crops`, the images read, where given)."""
    images = crops if crops is not None else [None] * len(reads)
    return tally(
        truths,
        [
            text if reader.accept(text, chars, crop) is not None else None
            for (text, chars), crop in zip(reads, images, strict=True)
        ],
    )


def tally(truths: Sequence[str], reported: Sequence[str | None]) -> dict:
    """Shares of plates whose reported text (None: withheld) is exact, wrong, or withheld."""
    exact = sum(text == truth for truth, text in zip(truths, reported, strict=True))
    wrong = sum(text is not None and text != truth for truth, text in zip(truths, reported, strict=True))
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
        rears = {}
        for width in widths:
            truths, found = [], []
            for _ in range(per_width):
                image, text, _ = vehicle_rear(rng, width, kind)
                read = reader.read_image(image)
                truths.append(text)
                # The read passed the thresholds already; its written form carries the dot.
                found.append(None if read is None else read.text.replace("·", ""))
            rears[str(width)] = tally(truths, found)
        legible = pooled({kind: {w: crops[kind][w] for w in widths if w >= LEGIBLE_WIDTH}})
        out[kind] = {
            "crops_legible": score(reader, *legible),
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
    province_model: str | Path | None = None,
    province_agreed_confidence: float = PlateSettings().province_agreed_confidence,
    province_model_confidence: float = PlateSettings().province_model_confidence,
) -> dict:
    """The figures above, for `model` at the given thresholds, with the province check of `province_model`
    where given."""
    classifier = None if province_model is None else ProvinceClassifier(province_model, threads=1)
    check = (
        None if classifier is None else ProvinceCheck(classifier, province_agreed_confidence, province_model_confidence)
    )
    recognizer = PlateRecognizer(model, threads=1)
    reader = PlateReader(recognizer, min_confidence, province_confidence, province_check=check)
    result: dict = {
        "model": Path(model).name,
        "min_confidence": min_confidence,
        "province_confidence": province_confidence,
    }
    if check is not None:
        result["province_check"] = {
            "model": Path(province_model).name,
            "province_agreed_confidence": province_agreed_confidence,
            "province_model_confidence": province_model_confidence,
        }
    if (crops_root / "labels.csv").is_file():
        calibration, held_out = split_crops(load_crops(crops_root))
        result["real_held_out"] = score(reader, *read_real(recognizer, held_out))
        without_check = PlateReader(recognizer, min_confidence, province_confidence)
        result["calibration"] = calibrate(recognizer, calibration, reader=without_check, classifier=classifier)
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
    p.add_argument(
        "--province-model", default=None, help="province classifier ONNX for the province check (default: none)"
    )
    defaults = PlateSettings()
    for name in ("min_confidence", "province_confidence", "province_agreed_confidence", "province_model_confidence"):
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
    if args.province_model is not None and not Path(args.province_model).is_file():
        print(f"feixian plates eval: province model not found: {args.province_model}", file=sys.stderr)
        return 2
    try:
        PlateSettings(
            min_confidence=args.min_confidence,
            province_confidence=args.province_confidence,
            province_agreed_confidence=args.province_agreed_confidence,
            province_model_confidence=args.province_model_confidence,
        )
    except ValueError as e:
        print(f"feixian plates eval: {e}", file=sys.stderr)
        return 2
    result = evaluate_reader(
        args.model,
        args.seed,
        args.per_width,
        args.min_confidence,
        args.province_confidence,
        province_model=args.province_model,
        province_agreed_confidence=args.province_agreed_confidence,
        province_model_confidence=args.province_model_confidence,
    )
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
