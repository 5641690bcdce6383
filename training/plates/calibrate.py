"""Choose the plate reader's reporting thresholds from reads of plates it was not measured on.

`min_confidence` (the weakest character): the lowest value on a grid at which the wrong texts reported on
the calibration part of the real crops stay at most a fifth of the 1 % that is acceptable. A fifth, because
700 crops pin a rate this low only roughly, and the held-out part may be less kind.

`province_confidence` (the province character on its own): the real crops are 96 % 皖, so they cannot show
which provinces a reader confuses. Rendered plates of every province and colour (seed 7, never reported
on) can: the threshold is the lowest grid value above every wrong-province read among them.

The province check (`pipeline.plate_province`), where a classifier is given: the classifier's threshold
above every province it names wrongly, the recogniser's floor where its unsure provinces are mostly right
(`calibrate_check`), on the rendered draw and the real crops the classifier never saw (the last 300 of the
calibration part); the pair must report no wrong province on the one and at most WRONG_SHARE wrong texts on
the other.

>>> pick([(0.5, 0.01), (0.6, 0.004), (0.7, 0.0)], 0.002)
0.7
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.plate_province import ProvinceCheck, ProvinceClassifier
from pipeline.plates import PlateReader, PlateRecognizer, is_plate_text
from training.plates.real import Crop, province_check_crops
from training.plates.render import KINDS, localised_crop

GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 ... 0.95
WRONG_SHARE = 0.002  # a fifth of the acceptable 1 %
CALIBRATION_SEED = 7
CALIBRATION_WIDTHS = (60, 80, 100, 120, 160, 200)

AGREED_GRID = tuple(round(0.1 * k, 1) for k in range(10))  # 0.0 ... 0.9: the recogniser's province score
CHECK_GRID = (*GRID[9:], 0.97, 0.98, 0.99)  # 0.5 ... 0.99: the classifier's probability
UNSURE_RIGHT = 0.8  # of the recogniser's unsure provinces in a band that must be right for the check to look

Reading = tuple[str, list[float]]
# Plates as read: the true texts, the recogniser's reads and the crops it read.
Reads = tuple[list[str], list[Reading], list[np.ndarray]]


def read_crops(recognizer: PlateRecognizer, images: Sequence[np.ndarray], batch: int = 32) -> list[Reading]:
    """The recogniser's raw reads (text, per-character probabilities), `batch` crops at a time."""
    return [r for k in range(0, len(images), batch) for r in recognizer.read(images[k : k + batch])]


def read_real(recognizer: PlateRecognizer, crops: Sequence[Crop]) -> Reads:
    images = [cv2.imread(str(path)) for path, _ in crops]
    return [text for _, text in crops], read_crops(recognizer, images), images


def render_reads(recognizer: PlateRecognizer, seed: int, per_width: int, widths: Sequence[int]) -> dict:
    """{kind: {width: Reads}} for `per_width` localised crops of each rendered kind and width."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[int, Reads]] = {}
    for kind in KINDS:
        out[kind] = {}
        for width in widths:
            images, texts = zip(
                *(localised_crop(rng, width, kind, recognizer.crop_size) for _ in range(per_width)), strict=True
            )
            out[kind][width] = (list(texts), read_crops(recognizer, images), list(images))
    return out


def pooled(by_kind_and_width: dict) -> Reads:
    """The rendered reads of every kind and width as one set."""
    sets = [reads for by_width in by_kind_and_width.values() for reads in by_width.values()]
    return tuple([x for s in sets for x in s[k]] for k in range(3))  # type: ignore[return-value]


def wrong_reported(truths: Sequence[str], reads: Sequence[Reading], threshold: float) -> float:
    """Share of plates given a plate-shaped, wrong text whose weakest character reaches `threshold`."""
    wrong = sum(
        t != text and is_plate_text(text) and min(c) >= threshold for t, (text, c) in zip(truths, reads, strict=True)
    )
    return wrong / max(1, len(truths))


def pick(curve: Sequence[tuple[float, float]], limit: float) -> float:
    """The lowest threshold whose wrong share is at most `limit` (the highest on the grid if none is)."""
    return next((t for t, share in curve if share <= limit), curve[-1][0])


def calibrate(
    recognizer: PlateRecognizer,
    calibration: Sequence[Crop],
    per_width: int = 40,
    reader: PlateReader | None = None,
    classifier: ProvinceClassifier | None = None,
) -> dict:
    """Both thresholds, and what each was chosen from; with `classifier`, the province check's thresholds
    for `reader`'s (those in use) too."""
    truths, reads, images = read_real(recognizer, calibration)
    curve = [(t, wrong_reported(truths, reads, t)) for t in GRID]
    rendered = pooled(render_reads(recognizer, CALIBRATION_SEED, per_width, CALIBRATION_WIDTHS))
    wrong_provinces = [
        c[0]
        for truth, (text, c) in zip(rendered[0], rendered[1], strict=True)
        if is_plate_text(text) and text[0] != truth[0]
    ]
    province = next((t for t in GRID if t > max(wrong_provinces, default=0.0)), GRID[-1])
    out = {
        "min_confidence": pick(curve, WRONG_SHARE),
        "province_confidence": province,
        "real_crops": len(calibration),
        "wrong_reported_by_threshold": {str(t): round(share, 4) for t, share in curve},
        "rendered_crops": per_width * len(CALIBRATION_WIDTHS) * len(KINDS),
        "wrong_province_reads": len(wrong_provinces),
        "highest_wrong_province_confidence": round(max(wrong_provinces, default=0.0), 4),
    }
    if reader is not None and classifier is not None:
        checked = len(province_check_crops(list(calibration)))
        real = (truths[-checked:], reads[-checked:], images[-checked:])
        out["province_check"] = calibrate_check(reader, classifier, real, rendered)
    return out


def _outcomes(reader: PlateReader, reads: Reads) -> tuple[int, int, int]:
    """(exact, wrong texts, wrong provinces) reported by `reader`."""
    exact = wrong = wrong_province = 0
    for truth, (text, chars), crop in zip(*reads, strict=True):
        if reader.accept(text, chars, crop) is not None:
            exact += text == truth
            wrong += text != truth
            wrong_province += text[0] != truth[0]
    return exact, wrong, wrong_province


def calibrate_check(reader: PlateReader, classifier: ProvinceClassifier, real: Reads, rendered: Reads) -> dict:
    """The province check's thresholds for `reader` (its own in use), then what they report.

    The classifier's: the lowest CHECK_GRID value above every province it names wrongly among `real` and
    `rendered`, so that on its own it would have named no wrong province there. The recogniser's: the lowest
    AGREED_GRID value from which, band by band, its provinces under `reader.province_confidence` on `rendered`
    are right at least UNSURE_RIGHT of the time: the classifier then corroborates a likely reading, it does
    not settle a coin toss. The pair must then report no wrong province on `rendered` and at most
    WRONG_SHARE wrong texts on `real`; if not, there is no check (None)."""
    truths, images = [*real[0], *rendered[0]], [*real[2], *rendered[2]]
    wrong_named = [p for t, (named, p) in zip(truths, classifier.classify(images), strict=True) if named != t[0]]
    confidence = next((t for t in CHECK_GRID if t > max(wrong_named, default=0.0)), None)
    unsure = [
        (c[0], text[0] == truth[0])
        for truth, (text, c) in zip(rendered[0], rendered[1], strict=True)
        if is_plate_text(text) and c[0] < reader.province_confidence
    ]
    bands = {a: [right for score, right in unsure if a <= score < a + 0.1] for a in AGREED_GRID}
    likely = [a for a in AGREED_GRID if len(bands[a]) and sum(bands[a]) < UNSURE_RIGHT * len(bands[a])]
    agreed = round(max(likely, default=-0.1) + 0.1, 1)
    out: dict = {
        "real_crops": len(real[0]),
        "rendered_crops": len(rendered[0]),
        "classifier_wrong": len(wrong_named),
        "highest_classifier_wrong": round(max(wrong_named, default=0.0), 4),
        "unsure_provinces_right_by_band": {str(a): [sum(b), len(b)] for a, b in bands.items()},
        "exact_without_check": {"real": _outcomes(reader, real)[0], "rendered": _outcomes(reader, rendered)[0]},
    }
    if confidence is None or agreed > AGREED_GRID[-1]:
        return out | {"province_agreed_confidence": None, "province_model_confidence": None}
    check = ProvinceCheck(classifier, agreed, confidence)
    with_check = PlateReader(reader.recognizer, reader.min_confidence, reader.province_confidence, province_check=check)
    (real_exact, real_wrong, _), (rendered_exact, rendered_wrong, rendered_wrong_province) = (
        _outcomes(with_check, real),
        _outcomes(with_check, rendered),
    )
    safe = rendered_wrong_province == 0 and real_wrong <= WRONG_SHARE * len(real[0])
    return out | {
        "province_agreed_confidence": agreed if safe else None,
        "province_model_confidence": confidence if safe else None,
        "exact_with_check": {"real": real_exact, "rendered": rendered_exact},
        "wrong_with_check": {"real": real_wrong, "rendered": rendered_wrong},
    }
