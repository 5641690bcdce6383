"""Detection average precision (mAP50, mAP50-95, per class), COCO-style 101-point interpolation.

The same definition Ultralytics reports, computed here from the runtime ONNX detector's own output,
so the figure describes what production runs rather than the training framework.

>>> acc = APAccumulator(["a", "b"])
>>> gt_boxes = np.array([[0, 0, 10, 10]], float)
>>> acc.add(np.array([[0, 0, 10, 10]], float), np.array([0.9]), np.array([0]), gt_boxes, np.array([0]))
>>> round(acc.result()["map50"], 3), acc.result()["per_class_ap50"]
(0.995, {'a': 0.995, 'b': None})
"""

from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes, shape (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def match_predictions(pred_cls: np.ndarray, gt_cls: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """True-positive matrix (n_pred, n_thresholds): one-to-one matching, highest IoU first, same class."""
    correct = np.zeros((len(pred_cls), len(IOU_THRESHOLDS)), dtype=bool)
    if len(pred_cls) == 0 or len(gt_cls) == 0:
        return correct
    iou = iou * (gt_cls[None, :] == pred_cls[:, None])
    for k, t in enumerate(IOU_THRESHOLDS):
        p, g = np.nonzero(iou >= t)
        if len(p) == 0:
            continue
        order = np.argsort(-iou[p, g], kind="stable")
        p, g = p[order], g[order]
        _, first_g = np.unique(g, return_index=True)
        p, g = p[np.sort(first_g)], g[np.sort(first_g)]
        order = np.argsort(-iou[p, g], kind="stable")
        p, g = p[order], g[order]
        _, first_p = np.unique(p, return_index=True)
        correct[p[first_p], k] = True
    return correct


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, sampled at 101 recall points (COCO)."""
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([1.0], precision, [0.0]))
    p = np.flip(np.maximum.accumulate(np.flip(p)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, r, p), x))


class APAccumulator:
    """Collects predictions and ground truth image by image, then computes AP per class."""

    def __init__(self, class_names: list[str]):
        self.class_names = list(class_names)
        self._correct: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pred_cls: list[np.ndarray] = []
        self._gt_cls: list[np.ndarray] = []

    def add(
        self,
        pred_boxes: np.ndarray,
        pred_conf: np.ndarray,
        pred_cls: np.ndarray,
        gt_boxes: np.ndarray,
        gt_cls: np.ndarray,
    ) -> None:
        pred_boxes = np.asarray(pred_boxes, float).reshape(-1, 4)
        gt_boxes = np.asarray(gt_boxes, float).reshape(-1, 4)
        pred_cls = np.asarray(pred_cls, int)
        gt_cls = np.asarray(gt_cls, int)
        self._correct.append(match_predictions(pred_cls, gt_cls, box_iou(pred_boxes, gt_boxes)))
        self._conf.append(np.asarray(pred_conf, float))
        self._pred_cls.append(pred_cls)
        self._gt_cls.append(gt_cls)

    def result(self) -> dict:
        correct = np.concatenate(self._correct) if self._correct else np.zeros((0, len(IOU_THRESHOLDS)), bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        pred_cls = np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0, int)
        gt_cls = np.concatenate(self._gt_cls) if self._gt_cls else np.zeros(0, int)
        order = np.argsort(-conf, kind="stable")
        correct, pred_cls = correct[order], pred_cls[order]
        ap = np.full((len(self.class_names), len(IOU_THRESHOLDS)), np.nan)
        for c in range(len(self.class_names)):
            n_gt = int((gt_cls == c).sum())
            if n_gt == 0:
                continue
            tp = correct[pred_cls == c]
            if len(tp) == 0:
                ap[c] = 0.0
                continue
            tpc = np.cumsum(tp, axis=0)
            fpc = np.cumsum(~tp, axis=0)
            recall = tpc / n_gt
            precision = tpc / (tpc + fpc)
            for k in range(len(IOU_THRESHOLDS)):
                ap[c, k] = average_precision(recall[:, k], precision[:, k])
        present = ~np.isnan(ap[:, 0])
        return {
            "map50": float(np.mean(ap[present, 0])) if present.any() else 0.0,
            "map50_95": float(np.mean(ap[present])) if present.any() else 0.0,
            "per_class_ap50": {
                n: (round(float(ap[i, 0]), 4) if present[i] else None) for i, n in enumerate(self.class_names)
            },
            "per_class_ap50_95": {
                n: (round(float(ap[i].mean()), 4) if present[i] else None) for i, n in enumerate(self.class_names)
            },
            "instances": {n: int((gt_cls == i).sum()) for i, n in enumerate(self.class_names)},
        }
