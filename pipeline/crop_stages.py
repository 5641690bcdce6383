"""Second looks on a detector's boxes: small classifiers that each judge one kind of box again on its own crop,
and the detector with them behind it.

A detector judges every box from features shared by all classes, at the scale of the whole frame; a stage takes
the boxes of the classes it knows, crops each to a fixed size and asks a classifier trained for one question
(`pipeline.truck_state`: which state is this truck in; `pipeline.item_check`: is this an item, and which).
`StagedDetector` runs a detector and its stages in turn and otherwise is the detector (class names, metadata,
input size), so evidence names the same model.

>>> crop_box(np.zeros((100, 200, 3), np.uint8), (50, 20, 150, 60)).shape
(96, 96, 3)
>>> to_blob([np.zeros((96, 96, 3), np.uint8)]).shape
(1, 3, 96, 96)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv

from pipeline.detector import DetectorError
from pipeline.stream_scale import factors_between, inverse, scaled

CROP_SIZE = 96
CONTEXT = 0.1  # the crop takes this share of the box's size on every side: the object's edges stay in view
PAD = 114  # the letterbox grey Ultralytics pads with

CropsFrom = Callable[[], np.ndarray]


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


class CropClassifier:
    """An ONNX classifier of crops: input (N, 3, 96, 96) RGB in [0, 1], output (N, `outputs`) probabilities.

    Args:
        path: the ONNX file.
        outputs: how many classes it must answer.
        what: what it is, for the error naming a file that cannot serve.
        threads: ONNX Runtime intra-op threads; 0 = one.
    """

    def __init__(self, path: str, outputs: int, what: str, threads: int = 0):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 1
        # A few crops a frame are work for one thread; a pool that spins between calls would take the cores the
        # detector's own pool needs (on a street with 4 boxes a frame: 30 ms a frame more; this way, none).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a missing or broken file
            raise DetectorError(f"{path}: cannot load the {what}: {e}") from e
        shape = self._session.get_outputs()[0].shape
        if len(shape) != 2 or shape[1] != outputs:
            raise DetectorError(f"{path}: expected an output of shape (N, {outputs}), got {shape}")
        self._input = self._session.get_inputs()[0].name
        self.path = str(path)
        self.outputs = outputs

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, outputs) probabilities for N crops made by `crop_box`."""
        if not crops:
            return np.zeros((0, self.outputs), np.float32)
        (out,) = self._session.run(None, {self._input: to_blob(crops)})
        return out


class Stage(Protocol):
    """A second look: `needs` the classes the detector must have, the only ones it judges; `judge` returns the
    detections it changed (boxes dropped, classes or scores changed)."""

    needs: tuple[str, ...]

    def judge(
        self, bgr: np.ndarray, detections: sv.Detections, class_names: Sequence[str], iou_threshold: float
    ) -> sv.Detections: ...


class StagedDetector:
    """A detector with its stages behind it, run in the order given (see the module doc)."""

    def __init__(self, detector, stages: Sequence[Stage]):
        for stage in stages:
            missing = [c for c in stage.needs if c not in detector.class_names]
            if missing:
                raise DetectorError(f"{detector.path}: {type(stage).__name__} needs the classes {missing}")
        self.detector = detector
        self.stages = tuple(stages)

    @classmethod
    def of(cls, detector, stages: Sequence[Stage]):
        """The detector itself when there is no stage, else the detector with them."""
        return cls(detector, stages) if stages else detector

    def detect(self, bgr: np.ndarray, crops_from: CropsFrom | None = None) -> sv.Detections:
        """The detector's boxes on `bgr`, judged; with `crops_from`, the stages crop from that image (see `_judged`)."""
        return self._judged(bgr, self.detector.detect(bgr), crops_from)

    def detect_regions(
        self, bgr: np.ndarray, rects: Sequence[tuple[int, int, int, int]], crops_from: CropsFrom | None = None
    ) -> sv.Detections:
        """The detector's boxes in those regions of the frame (`OnnxDetector.detect_regions`), judged."""
        return self._judged(bgr, self.detector.detect_regions(bgr, rects), crops_from)

    def _judged(self, bgr: np.ndarray, detections: sv.Detections, crops_from: CropsFrom | None) -> sv.Detections:
        """The stages' verdicts on `detections`, boxes in `bgr`'s pixels. `crops_from` gives a larger picture of
        the same view (a camera's main stream, `bgr` its sub-stream): the stages crop from it, their boxes carried
        there and back, and it is asked for only when a stage has a box of its classes to judge, since decoding
        a main stream's frame costs more than detecting on its sub-stream."""
        image, factors = bgr, (1.0, 1.0)
        if crops_from is not None:
            names = detections.data["class_name"] if len(detections) else ()
            if not any(name in stage.needs for stage in self.stages for name in names):
                return detections
            image = crops_from()
            factors = factors_between(bgr, image)
        d = self.detector
        detections = scaled(detections, factors)
        for stage in self.stages:
            detections = stage.judge(image, detections, d.class_names, d.iou_threshold)
        # a stage may lower a score: under the detector's own threshold, the box is gone as if never found
        lowered = detections.confidence <= d.conf_threshold if len(detections) else np.zeros(0, bool)
        if lowered.any():
            detections = detections[~lowered]
        return scaled(detections, inverse(factors))

    def __getattr__(self, name: str):
        return getattr(self.detector, name)
