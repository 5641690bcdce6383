"""A second look at each occupation item box on its crop: does it show an item, and the item the detector says?

The detector learnt stalls, carts and goods from rendered items alone (no labelled photo of them exists here),
so on real footage it also boxes trees, verges and shadows as them. Tables, chairs and umbrellas it scores from
COCO's view where COCO sees them, and from a narrow branch where COCO does not (rendered ones), often unsure:
its boxes are in the right places more often than its scores of the right class are high. This stage crops each
item box and asks a small classifier (`training.item_check`: trained on rendered and real items against real
photos, including the detector's own boxes on real photos that hold none) which of `OUTPUTS` the crop shows:

- a stall, cart or goods box it doubts is any item at all (the probability of "none" over 1 - `min_confidence`)
  is dropped before tracking, so it starts no track and no case;
- every item box's score becomes a weighted geometric mean of the detector's and the classifier's score of the
  box's class, so a box both agree on ranks above one only the detector favours;
- a table, chair or umbrella box's score is only ever raised: COCO learnt those on real photos, the classifier
  has seen few real ones, and on real footage it must not overrule COCO.

A box whose score falls under the detector's own threshold then leaves (`pipeline.crop_stages.StagedDetector`).
People and vehicles are left alone.

>>> check = ItemCheck("models/feixian-itemcheck-v2.onnx", min_confidence=0.5)  # doctest: +SKIP
>>> detector = StagedDetector(OnnxDetector("models/feixian-street-v18.onnx"), [check])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from pipeline.crop_stages import CropClassifier, crop_box

GENERATED_ONLY: tuple[str, ...] = ("stall", "cart", "goods")  # no real photo here teaches them
REAL_TAUGHT: tuple[str, ...] = ("table", "chair", "umbrella")  # COCO learnt them on real photos
ITEMS = GENERATED_ONLY + REAL_TAUGHT
OUTPUTS: tuple[str, ...] = ("none", *ITEMS)  # the classifier's outputs, in this order


class ItemCheckSettings(BaseModel):
    """The `model.item_check:` section: the second look at every occupation item box."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        description="ONNX item classifier (`python -m training.item_check train`), relative to the settings file."
    )
    min_confidence: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="The probability of some item (any but 'none') a stall, cart or goods box needs to be kept; "
        "0.5: kept when more likely an item than not.",
    )
    score_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="The classifier's share in an item box's score, a geometric mean with the detector's: 0 leaves "
        "the detector's score, 1 takes the classifier's. Table, chair and umbrella scores are only raised.",
    )


class ItemCheck:
    """Drops the stall, cart and goods boxes its classifier doubts and re-scores every item box (module doc).

    Args:
        path: the classifier (`pipeline.crop_stages.CropClassifier`), its outputs in `OUTPUTS` order.
        min_confidence: the probability of some item a stall, cart or goods box needs to be kept.
        score_weight: the classifier's share in an item box's score.
        threads: ONNX Runtime intra-op threads; 0 = the runtime's default.
    """

    needs = ITEMS

    def __init__(self, path: str, min_confidence: float, score_weight: float = 0.5, threads: int = 0):
        self.classifier = CropClassifier(path, len(OUTPUTS), "item classifier", threads)
        self.path = str(path)
        self.min_confidence = min_confidence
        self.score_weight = score_weight

    def judge(
        self, bgr: np.ndarray, detections: sv.Detections, class_names: Sequence[str], iou_threshold: float
    ) -> sv.Detections:
        """The detections less the stall, cart and goods boxes the classifier doubts, item boxes re-scored; the
        rest as they were."""
        names = np.asarray(detections.data["class_name"]) if len(detections) else np.array([], str)
        items = np.flatnonzero(np.isin(names, ITEMS))
        if not len(items):
            return detections
        probs = self.classifier.probabilities([crop_box(bgr, detections.xyxy[i]) for i in items])
        own = probs[np.arange(len(items)), [OUTPUTS.index(n) for n in names[items]]]
        score = detections.confidence[items].astype(np.float64)
        blended = score ** (1 - self.score_weight) * own**self.score_weight
        real_taught = np.isin(names[items], REAL_TAUGHT)
        judged = detections[np.arange(len(detections))]  # a copy: the caller's detections stay as detected
        judged.confidence[items] = np.where(real_taught, np.maximum(score, blended), blended)
        keep = np.ones(len(judged), bool)
        keep[items[~real_taught & (1 - probs[:, 0] < self.min_confidence)]] = False
        return judged if keep.all() else judged[keep]
