"""The columns of a tracked `sv.Detections` that the rules read, checked once per frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

from pipeline.events import ObjectSeen


@dataclass(frozen=True)
class Columns:
    """Boxes (N, 4), class names, scores, tracker ids (-1 = not yet confirmed) and whether each box touches
    the frame border (the object is cut off; false where the detector did not say) of one frame."""

    xyxy: np.ndarray
    names: np.ndarray
    confidence: np.ndarray
    tracker_id: np.ndarray
    at_edge: np.ndarray

    @classmethod
    def of(cls, detections: sv.Detections) -> Columns:
        n = len(detections)
        names = detections.data.get("class_name")
        if names is None and n:
            raise ValueError("detections lack data['class_name'] (OnnxDetector sets it)")
        if detections.confidence is None and n:
            raise ValueError("detections lack confidence scores")
        return cls(
            xyxy=np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4),
            names=np.asarray(names if names is not None else [], dtype=str),
            confidence=np.asarray(detections.confidence if n else [], dtype=np.float64),
            tracker_id=np.asarray(detections.tracker_id if detections.tracker_id is not None else np.full(n, -1)),
            at_edge=np.asarray(detections.data.get("at_edge", np.zeros(n, dtype=bool)), dtype=bool),
        )

    def object(self, i: int) -> ObjectSeen:
        tid = int(self.tracker_id[i])
        return ObjectSeen(
            box=tuple(float(v) for v in self.xyxy[i]),
            class_name=str(self.names[i]),
            confidence=float(self.confidence[i]),
            track_id=tid if tid >= 0 else None,
        )


def match_by_iou(
    a: np.ndarray, b: np.ndarray, min_iou: float, allowed: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (i in a, j in b), best overlap first, each with IoU >= min_iou and, when
    given, `allowed[i, j]` true."""
    if not len(a) or not len(b):
        return []
    iou = sv.box_iou_batch(a, b)
    if allowed is not None:
        iou = np.where(allowed, iou, 0.0)
    rows, cols = np.nonzero(iou >= min_iou)
    pairs = []
    used_a, used_b = set(), set()
    for k in np.argsort(-iou[rows, cols], kind="stable"):
        i, j = int(rows[k]), int(cols[k])
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs
