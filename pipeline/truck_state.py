"""A second stage that judges a truck's state on its own crop: clean and covered, dirty, or uncovered.

The detector finds trucks well (COCO learnt them on real photos) but judges their state from features shared
with every other class at a scale set by the whole frame. This stage looks again at each truck box alone, at
a fixed resolution, with a small classifier trained for exactly that question (`training.truck_state`), and
overrides the detector's truck class: a truck is called dirty or uncovered only when the classifier is at
least `min_confidence` sure, otherwise it stays a plain truck, because a clean truck taken for a dirty one is a
case against an innocent party.

>>> judge = TruckStateJudge("models/feixian-truckstate-v1.onnx", min_confidence=0.7)  # doctest: +SKIP
>>> detector = StagedDetector(OnnxDetector("models/feixian-street-v18.onnx"), [judge])  # doctest: +SKIP
>>> detections = detector.detect(frame)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from pipeline.crop_stages import CropClassifier, crop_box
from pipeline.detector import nms
from pipeline.taxonomy import TRUCK_CLASSES

STATES: tuple[str, ...] = tuple(TRUCK_CLASSES)  # the classifier's outputs, in this order


class TruckStateSettings(BaseModel):
    """The `model.truck_state:` section: the second stage that judges each truck's state on its crop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        description="ONNX truck-state classifier (`python -m training.truck_state train`), relative to the "
        "settings file."
    )
    min_confidence: float = Field(
        default=0.7,
        gt=0.34,
        lt=1,
        description="How sure the classifier must be to call a truck dirty or uncovered; below it the truck is "
        "plain. A clean truck called dirty is a case against an innocent party, so this stays high.",
    )


class TruckStateJudge:
    """Re-judges the state of every truck box in a set of detections on its crop (see the module doc).

    Args:
        path: the classifier (`pipeline.crop_stages.CropClassifier`), its 3 outputs in `STATES` order.
        min_confidence: the probability a dirty or uncovered state needs; below it the truck stays plain.
        threads: ONNX Runtime intra-op threads; 0 = the runtime's default.
    """

    needs = STATES

    def __init__(self, path: str, min_confidence: float, threads: int = 0):
        self.classifier = CropClassifier(path, len(STATES), "truck-state classifier", threads)
        self.path = str(path)
        self.min_confidence = min_confidence

    def judge(
        self, bgr: np.ndarray, detections: sv.Detections, class_names: Sequence[str], iou_threshold: float
    ) -> sv.Detections:
        """The detections with one box per truck, its class the judged state; other boxes untouched.

        The detector may box one truck twice (as a truck and as a dirty truck: its NMS keeps classes apart);
        once the classifier names the state, the family's boxes overlapping more than `iou_threshold` are one
        truck, kept at its best score. `class_names` maps class ids to names (the detector's); every state must
        be among them."""
        names = np.asarray(detections.data["class_name"]) if len(detections) else np.array([], str)
        trucks = np.flatnonzero(np.isin(names, STATES))
        if not len(trucks):
            return detections
        trucks = trucks[nms(detections.xyxy[trucks], detections.confidence[trucks], iou_threshold)]
        others = np.flatnonzero(~np.isin(names, STATES))
        probs = self.classifier.probabilities([crop_box(bgr, detections.xyxy[i]) for i in trucks])
        best = probs.argmax(axis=1)
        sure = probs[np.arange(len(best)), best] >= self.min_confidence
        states = np.asarray(STATES)[np.where(sure, best, 0)]  # unsure: the plain truck
        keep = np.sort(np.concatenate([others, trucks]))
        judged = detections[keep]  # a copy: the caller's detections stay as detected
        where = np.searchsorted(keep, trucks)
        judged.data["class_name"] = judged.data["class_name"].astype(object)
        judged.data["class_name"][where] = states
        judged.data["class_name"] = judged.data["class_name"].astype(str)
        ids = {name: i for i, name in enumerate(class_names)}
        judged.class_id[where] = [ids[state] for state in states]
        return judged
