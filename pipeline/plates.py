"""Licence-plate reading: find blue, yellow or green plates by colour, read them with a CTC text
recogniser (ONNX Runtime), and agree on one plate over several views of a truck.

Localising by colour is what mainland plates allow cheaply: a blue (cars), yellow (trucks, buses) or green
(new-energy) field of plate proportions. Every candidate is read, and a read counts only if it has the shape
of a plate (province, issuing-office letter, five or six letters or digits), every character is confident
and the province character is more confident still (or a province classifier names the same province,
`pipeline.plate_province`), so a yellow stripe on a cab that happens to have plate proportions reads as
nothing. Unread is acceptable, wrong is not: a wrong plate names the wrong party.
The recogniser's ONNX file carries its character set and input format (`training/plates/ppocr.py` writes
the shipped one, `feixian plates train` the older rendered-only one).

>>> reader = PlateReader(PlateRecognizer("models/feixian-plate-v2.onnx"))  # doctest: +SKIP
>>> reader.read_image(cv2.imread("car.jpg")).text  # doctest: +SKIP
'皖A·195K9'
>>> is_plate_text("皖A195K9"), is_plate_text("A195K9"), is_plate_text("沪AD12345"), format_plate("皖A195K9")
(True, False, True, '皖A·195K9')
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.onnx_files import tagged_session
from pipeline.plate_province import ProvinceCheck

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_RE = re.compile(
    f"^[{PROVINCES}][A-HJ-NP-Z]"
    # five letters or digits (the last possibly 学/警/挂); or new-energy: D/F (electric/hybrid) and a letter
    # or digit then four digits (cars), or five digits then D/F (large vehicles)
    "(?:[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9学警挂]|[DF][A-HJ-NP-Z0-9][0-9]{4}|[0-9]{5}[DF])$"
)
# Printed between characters or read off the plate's dot and rim (the dot also as a full-width colon):
# not part of the plate's text.
_SEPARATORS = frozenset("·.:：- ")
# I and O are never issued (GB 36-2018), so a general text reader's O or I on a plate is its 0 or 1.
_NEVER_ISSUED = str.maketrans("OI", "01")

# OpenCV HSV (H in 0-180, S and V 0-255): the hue and saturation of blue, yellow and green plate paint.
# Orange bodies are under 17; a new-energy plate fades to near white at the top, hence its lower saturation.
_HUE_SAT = {"blue": ((100, 90), (130, 255)), "yellow": ((17, 90), (34, 255)), "green": ((40, 40), (85, 255))}
# The plate is lit and painted brighter than most car bodies of its colour: a blue plate on a blue car
# separates from the body only above some brightness, so fields are cut at several.
_MIN_VALUES = (50, 110, 170)
_ASPECT = (1.5, 6.5)  # long over short side of the coloured field: 440/140 = 3.1 face on, less when seen obliquely
_MIN_AREA = 150  # px; below this no network reads seven characters
_MAX_SHARE = 0.5  # of the searched region's area: a larger field is a car body, not its plate


def is_plate_text(text: str) -> bool:
    """Seven (eight on a new-energy plate) characters in the order a mainland single-row plate has them (no
    separator dot)."""
    return bool(_PLATE_RE.match(text))


def format_plate(text: str) -> str:
    """The written form with the dot after the issuing-office letter: 沪A·12345."""
    return f"{text[:2]}·{text[2:]}"


@dataclass(frozen=True)
class PlateRead:
    """One plate reading: the written text, its weakest character's probability, where it was found
    (four corners in the image, clockwise from top left) and the rectified crop (BGR)."""

    text: str
    confidence: float
    quad: np.ndarray
    crop: np.ndarray
    colour: str


class PlateRecognizer:
    """Runs a CTC text recogniser on plate crops.

    Its ONNX metadata says what it reads: `task: plate-ocr`, `charset` (output class k is charset[k - 1],
    0 the CTC blank) and `input` ("HxW grey" or "HxW bgr"). The network takes 0-255 pixels and returns
    log-probabilities, (batch, columns, classes).

    Args:
        model_path: an ONNX file written by `training/plates/ppocr.py` or `feixian plates train`.
        threads: ONNX Runtime intra-op threads; 0 = runtime default.
    """

    def __init__(self, model_path: str | Path, threads: int = 0):
        self.session, meta = tagged_session(model_path, threads, "plate-ocr", "charset", "plate reader")
        self.charset = meta["charset"]
        self.version = meta.get("version", "")
        size, _, colours = meta.get("input", "32x128 grey").partition(" ")
        self.height, self.width = (int(v) for v in size.split("x"))
        self.grey = colours != "bgr"
        self._input = self.session.get_inputs()[0].name

    @property
    def crop_size(self) -> tuple[int, int]:
        """(w, h) to rectify a plate to: the input's height, four times as wide (a plate and its rim)."""
        return min(self.width, 4 * self.height), self.height

    def read(self, crops: Sequence[np.ndarray]) -> list[tuple[str, list[float]]]:
        """Text (no separators) and each character's probability, for each BGR crop of any size."""
        if not crops:
            return []
        batch = np.stack([self._fit(c) for c in crops]).astype(np.float32)
        batch = batch[:, None] if self.grey else batch.transpose(0, 3, 1, 2)
        log_probs = self.session.run(None, {self._input: batch})[0]
        return [self._decode(lp) for lp in log_probs]

    def _fit(self, crop: np.ndarray) -> np.ndarray:
        """The crop scaled to the input's height, its shape kept up to the input's width, padded on the right
        with mid grey (the way text recognisers are trained, on lines shorter than the batch's longest)."""
        if self.grey and crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if not self.grey and crop.ndim == 2:
            crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
        h, w = crop.shape[:2]
        fitted_w = max(1, min(self.width, round(self.height * w / max(h, 1))))
        crop = cv2.resize(crop, (fitted_w, self.height), interpolation=cv2.INTER_LINEAR)
        pad = self.width - fitted_w
        return cv2.copyMakeBorder(crop, 0, 0, 0, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128)) if pad else crop

    def _decode(self, log_probs: np.ndarray) -> tuple[str, list[float]]:
        best = log_probs.argmax(-1)
        probs = np.exp(log_probs.max(-1))
        chars: list[str] = []
        confidences: list[float] = []
        for k, cls in enumerate(best):
            if cls == 0:
                continue
            if k > 0 and best[k - 1] == cls:
                confidences[-1] = max(confidences[-1], float(probs[k]))
                continue
            chars.append(self.charset[cls - 1])
            confidences.append(float(probs[k]))
        kept = [(c, p) for c, p in zip(chars, confidences, strict=True) if c not in _SEPARATORS]
        return "".join(c for c, _ in kept).translate(_NEVER_ISSUED), [p for _, p in kept]


class PlateReader:
    """Finds and reads plates in an image or a region of it; agrees on one plate over several views.

    Args:
        recognizer: the network that reads a rectified crop.
        min_confidence: a read whose weakest character scores below this is withheld.
        province_confidence: a read whose province character scores below this is withheld: the province
            glyph is the one most often misread on real plates, and a wrong one names another party.
        max_candidates: coloured fields read per image, largest first.
        province_check: where given, a province under `province_confidence` still counts if the check
            confirms it on the crop (`pipeline.plate_province`); its score then stands for the province's.

    >>> reader = PlateReader(PlateRecognizer("models/feixian-plate-v2.onnx"), 0.85, 0.95)  # doctest: +SKIP
    >>> reader.accept("皖A195K9", [0.99] * 7), reader.accept("皖A195K9", [0.9] + [0.99] * 6)  # doctest: +SKIP
    (0.99, None)
    """

    def __init__(
        self,
        recognizer: PlateRecognizer,
        min_confidence: float = 0.8,
        province_confidence: float = 0.0,
        max_candidates: int = 8,
        province_check: ProvinceCheck | None = None,
    ):
        self.recognizer = recognizer
        self.min_confidence = min_confidence
        self.province_confidence = province_confidence
        self.max_candidates = max_candidates
        self.province_check = province_check

    def accept(self, text: str, confidences: Sequence[float], crop: np.ndarray | None = None) -> float | None:
        """The read's weakest-character confidence if it may name a party, else None (withheld). Without
        `crop` (the image read) the province check cannot look, and the province needs its own threshold."""
        if not is_plate_text(text):
            return None
        weakest = min(confidences[1:])
        if weakest < self.min_confidence:
            return None
        province = confidences[0]
        if province < max(self.province_confidence, self.min_confidence):
            if self.province_check is None or crop is None:
                return None
            province = self.province_check.confirm(crop, text[0], province)
            if province is None:
                return None
        return min(weakest, province)

    def read_crops(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float] | None]:
        """Each plate crop's (text, confidence), or None where the read is withheld."""
        reads = self.recognizer.read(crops)
        return [
            (text, conf) if (conf := self.accept(text, chars, crop)) is not None else None
            for (text, chars), crop in zip(reads, crops, strict=True)
        ]

    def read_image(self, image: np.ndarray, box: Sequence[float] | None = None) -> PlateRead | None:
        """The most confident plate in `image` (within `box`, x1 y1 x2 y2, if given), or None."""
        x0, y0 = 0, 0
        if box is not None:
            h, w = image.shape[:2]
            x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
            x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
            if x1 - x0 < 8 or y1 - y0 < 4:
                return None
            image = image[y0:y1, x0:x1]
        candidates = find_plate_quads(image)[: self.max_candidates]
        if not candidates:
            return None
        crops = [rectify(image, quad, self.recognizer.crop_size) for quad, _ in candidates]
        best = None
        for (quad, colour), crop, read in zip(candidates, crops, self.read_crops(crops), strict=True):
            if read is not None and (best is None or read[1] > best.confidence):
                best = PlateRead(format_plate(read[0]), read[1], quad + np.float32([x0, y0]), crop, colour)
        return best

    def read_views(self, views: Sequence[tuple[np.ndarray, Sequence[float] | None]]) -> tuple[PlateRead, int] | None:
        """One plate for one vehicle seen in several (image, box) views: the text with the largest summed
        confidence, as its most confident read, and the number of views that agree on it."""
        reads = [r for image, box in views if (r := self.read_image(image, box)) is not None]
        if not reads:
            return None
        totals: dict[str, float] = {}
        for r in reads:
            totals[r.text] = totals.get(r.text, 0.0) + r.confidence
        text = max(totals, key=totals.__getitem__)
        agreeing = [r for r in reads if r.text == text]
        return max(agreeing, key=lambda r: r.confidence), len(agreeing)


def find_plate_quads(image: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Blue and yellow fields of plate proportions, largest first: (corners clockwise from top left,
    colour). The characters are holes in the field; its outer contour is the plate."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    found = []
    for (colour, ((h_lo, s_lo), (h_hi, s_hi))), v_lo in itertools.product(_HUE_SAT.items(), _MIN_VALUES):
        mask = cv2.inRange(hsv, (h_lo, s_lo, v_lo), (h_hi, s_hi, 255))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            long_side, short_side = max(w, h), min(w, h)
            area = long_side * short_side
            if short_side < 4 or area < _MIN_AREA or area > _MAX_SHARE * image.shape[0] * image.shape[1]:
                continue
            if not _ASPECT[0] <= long_side / short_side <= _ASPECT[1]:
                continue
            if cv2.contourArea(contour) < 0.55 * w * h:  # a ragged blob, not a rectangle
                continue
            for quad in _corner_guesses(contour, ((cx, cy), (w, h), angle)):
                if not any(_same_quad(quad, q, area) for _, q, _ in found):  # cut again at another brightness
                    found.append((area, quad, colour))
    found.sort(key=lambda f: -f[0])
    return [(quad, colour) for _, quad, colour in found]


def _same_quad(quad: np.ndarray, other: np.ndarray, area: float) -> bool:
    return float(np.abs(quad - other).max()) < 0.08 * np.sqrt(area)


def _corner_guesses(contour: np.ndarray, rect: tuple) -> list[np.ndarray]:
    """The field's minimum-area rectangle and, where its outline simplifies to four points, that
    quadrilateral (a plate seen obliquely is a parallelogram); the reader's confidence picks between them."""
    guesses = [_order_corners(cv2.boxPoints(rect))]
    hull = cv2.convexHull(contour)
    approx = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True)
    if len(approx) == 4:
        guesses.append(_order_corners(approx[:, 0].astype(np.float32)))
    return guesses


def _order_corners(points: np.ndarray) -> np.ndarray:
    """Corners clockwise (in image coordinates) from the top left."""
    centre = points.mean(axis=0)
    pts = points[np.argsort(np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0]))]
    return np.roll(pts, -int(np.argmin(pts.sum(axis=1))), axis=0).astype(np.float32)


def rectify(image: np.ndarray, quad: np.ndarray, size: tuple[int, int], margin: float = 0.05) -> np.ndarray:
    """The plate's quad, grown by `margin` of its length on each end and twice that of its height (to take in
    the rim), warped to `size` (w, h)."""
    centre = quad.mean(axis=0)
    along, across = quad[1] - quad[0], quad[3] - quad[0]
    along, across = along / max(np.linalg.norm(along), 1e-6), across / max(np.linalg.norm(across), 1e-6)
    offsets = quad - centre
    grown = (
        centre
        + np.outer(offsets @ along, along) * (1 + 2 * margin)
        + np.outer(offsets @ across, across) * (1 + 4 * margin)
    )
    w, h = size
    dst = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    return cv2.warpPerspective(
        image, cv2.getPerspectiveTransform(grown.astype(np.float32), dst), (w, h), borderMode=cv2.BORDER_REPLICATE
    )
