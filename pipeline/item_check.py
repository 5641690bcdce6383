"""A second look at the items only the generator could teach: is this stall, cart or goods box a real one?

The detector learnt stalls, carts and goods from rendered items alone (no labelled photo of them exists here),
so on real footage it also boxes trees, verges and shadows as them. This stage crops each such box and asks a
small classifier (`training.item_check`: trained on those rendered items against real photos, including the
detector's own boxes on real photos that hold none) whether it shows an item; a box it doubts (probability under
`min_confidence`) is dropped before tracking, so it starts no track and no case. Tables, chairs, umbrellas,
people and vehicles, which COCO learnt on real photos, are left alone.

>>> check = ItemCheck("models/feixian-itemcheck-v1.onnx", min_confidence=0.5)  # doctest: +SKIP
>>> detector = StagedDetector(OnnxDetector("models/feixian-street-v18.onnx"), [check])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from pipeline.crop_stages import CropClassifier, crop_box

CHECKED: tuple[str, ...] = ("stall", "cart", "goods")  # the classes no real photo here teaches
ITEM = 1  # the classifier's outputs: 0 not an item, 1 an item


class ItemCheckSettings(BaseModel):
    """The `model.item_check:` section: the second look at stall, cart and goods boxes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        description="ONNX item classifier (`python -m training.item_check train`), relative to the settings file."
    )
    min_confidence: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="The probability of a real item a stall, cart or goods box needs to be kept; 0.5: kept when "
        "more likely an item than not.",
    )


class ItemCheck:
    """Drops the stall, cart and goods boxes its classifier doubts (see the module doc).

    Args:
        path: the classifier (`pipeline.crop_stages.CropClassifier`), 2 outputs: not an item, an item.
        min_confidence: the probability of an item a box needs to be kept.
        threads: ONNX Runtime intra-op threads; 0 = the runtime's default.
    """

    needs = CHECKED

    def __init__(self, path: str, min_confidence: float, threads: int = 0):
        self.classifier = CropClassifier(path, 2, "item classifier", threads)
        self.path = str(path)
        self.min_confidence = min_confidence

    def judge(
        self, bgr: np.ndarray, detections: sv.Detections, class_names: Sequence[str], iou_threshold: float
    ) -> sv.Detections:
        """The detections less the checked boxes the classifier doubts; the rest as they were."""
        names = np.asarray(detections.data["class_name"]) if len(detections) else np.array([], str)
        checked = np.flatnonzero(np.isin(names, CHECKED))
        if not len(checked):
            return detections
        item = self.classifier.probabilities([crop_box(bgr, detections.xyxy[i]) for i in checked])[:, ITEM]
        keep = np.ones(len(detections), bool)
        keep[checked[item < self.min_confidence]] = False
        return detections if keep.all() else detections[keep]
