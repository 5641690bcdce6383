"""Choose the plate reader's reporting thresholds from reads of plates it was not measured on.

`min_confidence` (the weakest character): the lowest value on a grid at which the wrong texts reported on
the calibration part of the real crops stay at most a fifth of the 1 % that is acceptable. A fifth, because
700 crops pin a rate this low only roughly, and the held-out part may be less kind.

`province_confidence` (the province character on its own): the real crops are 96 % 皖, so they cannot show
which provinces a reader confuses. Rendered plates of every province and colour (seed 7, never reported
on) can: the threshold is the lowest grid value above every wrong-province read among them.

>>> pick([(0.5, 0.01), (0.6, 0.004), (0.7, 0.0)], 0.002)
0.7
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.plates import PlateRecognizer, is_plate_text
from training.plates.real import Crop
from training.plates.render import KINDS, localised_crop

GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 ... 0.95
WRONG_SHARE = 0.002  # a fifth of the acceptable 1 %
CALIBRATION_SEED = 7
CALIBRATION_WIDTHS = (60, 80, 100, 120, 160, 200)

Reading = tuple[str, list[float]]


def read_crops(recognizer: PlateRecognizer, images: Sequence[np.ndarray], batch: int = 32) -> list[Reading]:
    """The recogniser's raw reads (text, per-character probabilities), `batch` crops at a time."""
    return [r for k in range(0, len(images), batch) for r in recognizer.read(images[k : k + batch])]


def read_real(recognizer: PlateRecognizer, crops: Sequence[Crop]) -> list[Reading]:
    return read_crops(recognizer, [cv2.imread(str(path)) for path, _ in crops])


def render_reads(recognizer: PlateRecognizer, seed: int, per_width: int, widths: Sequence[int]) -> dict:
    """{kind: {width: (texts, reads)}} for `per_width` localised crops of each rendered kind and width."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[int, tuple[list[str], list[Reading]]]] = {}
    for kind in KINDS:
        out[kind] = {}
        for width in widths:
            images, texts = zip(
                *(localised_crop(rng, width, kind, recognizer.crop_size) for _ in range(per_width)), strict=True
            )
            out[kind][width] = (list(texts), read_crops(recognizer, images))
    return out


def wrong_reported(truths: Sequence[str], reads: Sequence[Reading], threshold: float) -> float:
    """Share of plates given a plate-shaped, wrong text whose weakest character reaches `threshold`."""
    wrong = sum(
        t != text and is_plate_text(text) and min(c) >= threshold for t, (text, c) in zip(truths, reads, strict=True)
    )
    return wrong / max(1, len(truths))


def pick(curve: Sequence[tuple[float, float]], limit: float) -> float:
    """The lowest threshold whose wrong share is at most `limit` (the highest on the grid if none is)."""
    return next((t for t, share in curve if share <= limit), curve[-1][0])


def calibrate(recognizer: PlateRecognizer, calibration: Sequence[Crop], per_width: int = 40) -> dict:
    """Both thresholds, and what each was chosen from."""
    truths = [text for _, text in calibration]
    reads = read_real(recognizer, calibration)
    curve = [(t, wrong_reported(truths, reads, t)) for t in GRID]
    rendered = render_reads(recognizer, CALIBRATION_SEED, per_width, CALIBRATION_WIDTHS)
    wrong_provinces = [
        c[0]
        for by_width in rendered.values()
        for texts, rs in by_width.values()
        for truth, (text, c) in zip(texts, rs, strict=True)
        if is_plate_text(text) and text[0] != truth[0]
    ]
    province = next((t for t in GRID if t > max(wrong_provinces, default=0.0)), GRID[-1])
    return {
        "min_confidence": pick(curve, WRONG_SHARE),
        "province_confidence": province,
        "real_crops": len(calibration),
        "wrong_reported_by_threshold": {str(t): round(share, 4) for t, share in curve},
        "rendered_crops": per_width * len(CALIBRATION_WIDTHS) * len(KINDS),
        "wrong_province_reads": len(wrong_provinces),
        "highest_wrong_province_confidence": round(max(wrong_provinces, default=0.0), 4),
    }
