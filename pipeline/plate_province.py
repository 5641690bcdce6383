"""The province character's own check: a small classifier of the province glyph's cell of a plate crop, so
that a province the text recogniser is unsure of may still be reported when both networks name it.

The general text recogniser scores right provinces of unfamiliar glyphs low (a small green 藏 at 0.45) and
withholds the plate on the province threshold alone. A second, independent look at the same glyph turns
that into evidence: the province is confirmed only where the recogniser's province is the classifier's too,
each with enough confidence (`plates.province_agreed_confidence`, `plates.province_model_confidence`,
calibrated by `training/plates/calibrate.py`). A disagreement withholds, as before.

The cell is the left quarter of the crop, whole height: it holds the first of the seven (or eight)
characters both on a tight crop (the real 94x24 crops, glyph at 3-14 % of the width) and on the reader's
rectified crop with its margins (GB 36-2018 layout, glyph at 8-17 %), with room for the localiser's error.

>>> check = ProvinceCheck(ProvinceClassifier("models/feixian-province-v1.onnx"), 0.3, 0.9)  # doctest: +SKIP
>>> check.confirm(crop, "皖", 0.62)  # doctest: +SKIP
0.998
>>> province_cell(np.zeros((48, 192, 3), np.uint8)).shape
(32, 32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.onnx_files import tagged_session

CELL_SHARE = 0.25  # of the crop's width, from the left
CELL_SIZE = 32  # px, square: the classifier's input


def province_cell(crop: np.ndarray) -> np.ndarray:
    """The province glyph's cell of a plate crop (BGR or grey, any size): CELL_SIZE square, grey, 0-255."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    cell = grey[:, : max(1, round(grey.shape[1] * CELL_SHARE))]
    return cv2.resize(cell, (CELL_SIZE, CELL_SIZE), interpolation=cv2.INTER_AREA)


class ProvinceClassifier:
    """Names the province glyph of plate crops.

    Its ONNX metadata says `task: plate-province` and `classes` (output k is classes[k]); the network takes
    (batch, 1, CELL_SIZE, CELL_SIZE) 0-255 grey cells and returns log-probabilities.

    Args:
        model_path: an ONNX file written by `feixian plates train-province`.
        threads: ONNX Runtime intra-op threads; 0 = runtime default.
    """

    def __init__(self, model_path: str | Path, threads: int = 0):
        self.session, meta = tagged_session(model_path, threads, "plate-province", "classes", "province classifier")
        self.classes = meta["classes"]
        self._input = self.session.get_inputs()[0].name

    def classify(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(province, probability) of each plate crop's most likely province glyph."""
        if not crops:
            return []
        batch = np.stack([province_cell(c) for c in crops]).astype(np.float32)[:, None]
        log_probs = self.session.run(None, {self._input: batch})[0]
        best = log_probs.argmax(-1)
        return [(self.classes[k], float(np.exp(lp[k]))) for k, lp in zip(best, log_probs, strict=True)]


@dataclass(frozen=True)
class ProvinceCheck:
    """Confirms a recogniser's province with the classifier's agreement.

    Args:
        classifier: the province glyph classifier.
        agreed_confidence: the recogniser's own province score must still reach this.
        classifier_confidence: the classifier's probability for the same province must reach this.
    """

    classifier: ProvinceClassifier
    agreed_confidence: float
    classifier_confidence: float

    @classmethod
    def load(
        cls, path: str | Path | None, agreed_confidence: float, classifier_confidence: float, threads: int = 0
    ) -> ProvinceCheck | None:
        """The check with the classifier in `path`; None where no classifier is configured."""
        if path is None:
            return None
        return cls(ProvinceClassifier(path, threads), agreed_confidence, classifier_confidence)

    def confirm(self, crop: np.ndarray, province: str, score: float) -> float | None:
        """The classifier's probability if it names `province` (the recogniser's, scored `score`) with enough
        confidence on both sides, else None."""
        if score < self.agreed_confidence:
            return None
        named, probability = self.classifier.classify([crop])[0]
        return probability if named == province and probability >= self.classifier_confidence else None
