"""A second stage that judges a truck's state on its own crop: clean and covered, dirty, or uncovered.

The detector finds trucks well (COCO learnt them on real photos) but judges their state from features shared
with every other class at a scale set by the whole frame. This stage looks again at each truck box alone, at
a fixed resolution, with a small classifier trained for exactly that question (`training.truck_state`), and
overrides the detector's truck class: a truck is called dirty or uncovered only when the classifier is at
least `min_confidence` sure, otherwise it stays a plain truck, because a clean truck taken for a dirty one is a
case against an innocent party.

>>> judge = TruckStateJudge("models/feixian-truckstate-v1.onnx", min_confidence=0.7)  # doctest: +SKIP
>>> detector = JudgedDetector(OnnxDetector("models/feixian-street-v17.onnx"), judge)  # doctest: +SKIP
>>> detections = detector.detect(frame)  # doctest: +SKIP
>>> crop_box(np.zeros((100, 200, 3), np.uint8), (50, 20, 150, 60)).shape
(96, 96, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from pipeline.detector import DetectorError, nms
from pipeline.taxonomy import TRUCK_CLASSES

STATES: tuple[str, ...] = tuple(TRUCK_CLASSES)  # the classifier's outputs, in this order
CROP_SIZE = 96
CONTEXT = 0.1  # the crop takes this share of the box's size on every side: the bed's edges stay in view
PAD = 114  # the letterbox grey Ultralytics pads with


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


def crop_box(bgr: np.ndarray, box: Sequence[float], size: int = CROP_SIZE, context: float = CONTEXT) -> np.ndarray:
    """The box with a margin of context, letterboxed (aspect kept) into a size x size BGR square."""
    h, w = bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * context, (y2 - y1) * context
    x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
    x2, y2 = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    out = np.full((size, size, 3), PAD, np.uint8)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return out
    region = bgr[y1:y2, x1:x2]
    scale = size / max(region.shape[:2])
    nw, nh = max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))
    left, top = (size - nw) // 2, (size - nh) // 2
    out[top : top + nh, left : left + nw] = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def to_blob(crops: Sequence[np.ndarray]) -> np.ndarray:
    """BGR crops -> the classifier's NCHW RGB float input in [0, 1]."""
    stack = np.stack(crops)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(stack, dtype=np.float32) / 255.0


class TruckStateJudge:
    """Re-judges the state of every truck box in a set of detections on its crop (see the module doc).

    Args:
        path: the classifier, ONNX, input (N, 3, 96, 96) RGB in [0, 1], output (N, 3) probabilities in `STATES`
            order.
        min_confidence: the probability a dirty or uncovered state needs; below it the truck stays plain.
        threads: ONNX Runtime intra-op threads; 0 = the runtime's default.
    """

    def __init__(self, path: str, min_confidence: float, threads: int = 0):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a missing or broken file
            raise DetectorError(f"{path}: cannot load the truck-state classifier: {e}") from e
        shape = self._session.get_outputs()[0].shape
        if len(shape) != 2 or shape[1] != len(STATES):
            raise DetectorError(f"{path}: expected an output of shape (N, {len(STATES)}), got {shape}")
        self._input = self._session.get_inputs()[0].name
        self.path = str(path)
        self.min_confidence = min_confidence

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 3) state probabilities for N crops made by `crop_box`."""
        if not crops:
            return np.zeros((0, len(STATES)), np.float32)
        (out,) = self._session.run(None, {self._input: to_blob(crops)})
        return out

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
        probs = self.probabilities([crop_box(bgr, detections.xyxy[i]) for i in trucks])
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


class JudgedDetector:
    """A detector whose truck boxes carry the state `TruckStateJudge` gives them instead of the detector's own.

    Everything else (class names, metadata, input size) is the wrapped detector's, so evidence names the same
    model."""

    def __init__(self, detector, judge: TruckStateJudge):
        missing = [s for s in STATES if s not in detector.class_names]
        if missing:
            raise DetectorError(f"{detector.path}: a truck-state stage needs the classes {missing} in the detector")
        self.detector = detector
        self.judge = judge

    def detect(self, bgr: np.ndarray) -> sv.Detections:
        d = self.detector
        return self.judge.judge(bgr, d.detect(bgr), d.class_names, d.iou_threshold)

    def __getattr__(self, name: str):
        return getattr(self.detector, name)
