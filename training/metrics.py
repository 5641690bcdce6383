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

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from pipeline.taxonomy import OCCUPATION_CLASSES

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
    """True-positive matrix (n_pred, n_thresholds) for predictions given in descending confidence.

    COCO's greedy matching (and Ultralytics' since 8.4): at each threshold, each prediction in turn claims
    the unclaimed same-class ground truth it overlaps most, if that overlap reaches the threshold. Taking
    predictions by confidence, not pairs by IoU, is what makes a confident duplicate the true positive
    and a later, tighter one the false positive.
    """
    return _greedy_match(pred_cls, gt_cls, iou)[0]


def _greedy_match(pred_cls: np.ndarray, gt_cls: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`match_predictions`' matrix, and beside it which ground truth was claimed (n_gt, n_thresholds)."""
    correct = np.zeros((len(pred_cls), len(IOU_THRESHOLDS)), dtype=bool)
    claimed = np.zeros((len(gt_cls), len(IOU_THRESHOLDS)), dtype=bool)
    if len(pred_cls) == 0 or len(gt_cls) == 0:
        return correct, claimed
    iou = iou * (gt_cls[None, :] == pred_cls[:, None])
    thresholds = np.arange(len(IOU_THRESHOLDS))
    for j in np.flatnonzero((iou >= IOU_THRESHOLDS[0]).any(axis=1)):
        available = np.where(claimed, 0.0, iou[j][:, None])
        best = available.argmax(axis=0)
        correct[j] = available[best, thresholds] >= IOU_THRESHOLDS
        claimed[best, thresholds] |= correct[j]
    return correct, claimed


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, sampled at 101 recall points (COCO)."""
    # Precision drops to zero at the highest recall reached: recall never reached earns nothing (a
    # sentinel at recall 1 alone would credit a ramp up to it).
    r = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0, 1.0]))
    p = np.concatenate(([1.0], precision, [0.0, 0.0]))
    p = np.flip(np.maximum.accumulate(np.flip(p)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, r, p), x))


def _one_image(
    n_classes: int,
    pred_boxes: np.ndarray,
    pred_conf: np.ndarray,
    pred_cls: np.ndarray,
    gt_boxes: np.ndarray,
    gt_cls: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """One image's predictions (by descending confidence) and ground truth as arrays, checked."""
    pred_boxes = np.asarray(pred_boxes, float).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, float).reshape(-1, 4)
    pred_conf = np.asarray(pred_conf, float).reshape(-1)
    pred_cls = np.asarray(pred_cls, int).reshape(-1)
    gt_cls = np.asarray(gt_cls, int).reshape(-1)
    if not len(pred_boxes) == len(pred_conf) == len(pred_cls) or len(gt_boxes) != len(gt_cls):
        raise ValueError(
            f"boxes, scores and classes disagree in length: predictions {len(pred_boxes)}/{len(pred_conf)}/"
            f"{len(pred_cls)}, ground truth {len(gt_boxes)}/{len(gt_cls)}"
        )
    classes = np.concatenate([pred_cls, gt_cls])
    if len(classes) and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"class index outside 0..{n_classes - 1}: {sorted(set(classes.tolist()))}")
    order = np.argsort(-pred_conf, kind="stable")
    return pred_boxes[order], pred_conf[order], pred_cls[order], gt_boxes, gt_cls


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
        """One image: predicted xyxy boxes with scores and class indices, and its ground truth."""
        pred_boxes, pred_conf, pred_cls, gt_boxes, gt_cls = _one_image(
            len(self.class_names), pred_boxes, pred_conf, pred_cls, gt_boxes, gt_cls
        )
        self._correct.append(match_predictions(pred_cls, gt_cls, box_iou(pred_boxes, gt_boxes)))
        self._conf.append(pred_conf)
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


def _found_at(
    conf: float, n_classes: int, *image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image seen at an operating confidence: the classes of the predictions kept (by descending
    score), their IoU with the ground truth (n_kept, n_gt), the ground truth, and which of it they found
    at IoU 0.5."""
    pred_boxes, pred_conf, pred_cls, gt_boxes, gt_cls = _one_image(n_classes, *image)
    keep = pred_conf >= conf
    iou = box_iou(pred_boxes[keep], gt_boxes)
    found = _greedy_match(pred_cls[keep], gt_cls, iou)[1][:, 0]
    return pred_cls[keep], iou, gt_boxes, gt_cls, found


class _BinnedRecall:
    """Share of ground-truth objects found, per class and by one measure of each object (`key`, binned at
    `edges`), at an operating confidence. AP ranks every score down to 0.001; this answers what a
    deployment at `conf` sees. A ground truth is found when a prediction of its class scoring at least
    `conf` claims it at IoU 0.5 (the greedy matching of the AP figures)."""

    key = ""

    def __init__(self, class_names: list[str], edges: tuple[float, ...], conf: float):
        if list(edges) != sorted(edges) or not edges or edges[0] <= 0:
            raise ValueError(f"edges must be positive and ascending, got {edges}")
        self.class_names, self.edges, self.conf = list(class_names), tuple(edges), conf
        self._n = np.zeros((len(class_names), len(edges) + 1), int)
        self._found = np.zeros_like(self._n)

    def _measure(self, gt_boxes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def add(self, *image: np.ndarray) -> None:
        """One image, with `APAccumulator.add`'s arguments."""
        _, _, gt_boxes, gt_cls, found = _found_at(self.conf, len(self.class_names), *image)
        bins = np.digitize(self._measure(gt_boxes), self.edges)
        np.add.at(self._n, (gt_cls, bins), 1)
        np.add.at(self._found, (gt_cls, bins), found.astype(int))

    def result(self) -> dict:
        e = self.edges
        labels = [f"<{e[0]:g}"] + [f"{a:g}-{b:g}" for a, b in itertools.pairwise(e)] + [f">={e[-1]:g}"]
        return {
            "conf": self.conf,
            "iou": float(IOU_THRESHOLDS[0]),
            "per_class": {
                name: [
                    {
                        self.key: label,
                        "instances": int(self._n[c, b]),
                        "recall": round(float(self._found[c, b] / self._n[c, b]), 4) if self._n[c, b] else None,
                    }
                    for b, label in enumerate(labels)
                ]
                for c, name in enumerate(self.class_names)
            },
        }


class SizeRecall(_BinnedRecall):
    """Share of ground-truth objects found at an operating confidence, per class and by on-screen height:
    which objects, how small, a deployment misses.

    >>> sr = SizeRecall(["chair"], edges_px=(24,), conf=0.2)
    >>> boxes = np.array([[0, 0, 10, 20], [50, 0, 70, 40]], float)
    >>> sr.add(boxes[1:], np.array([0.9]), np.array([0]), boxes, np.array([0, 0]))
    >>> sr.result()["per_class"]["chair"]
    [{'height_px': '<24', 'instances': 1, 'recall': 0.0}, {'height_px': '>=24', 'instances': 1, 'recall': 1.0}]
    """

    key = "height_px"

    def __init__(self, class_names: list[str], edges_px: tuple[float, ...] = (24, 48, 96), conf: float = 0.2):
        super().__init__(class_names, edges_px, conf)

    def _measure(self, gt_boxes: np.ndarray) -> np.ndarray:
        return gt_boxes[:, 3] - gt_boxes[:, 1]


class OverlapRecall(_BinnedRecall):
    """Share of ground-truth objects found at an operating confidence, per class and by how much of each
    object's box another labelled object's box covers (the most any one covers): a pile of goods half
    behind a chair put out in front of it is a harder object than one standing alone.

    >>> orc = OverlapRecall(["chair", "goods"], conf=0.2)
    >>> gt = np.array([[0, 0, 20, 20], [10, 0, 30, 20], [50, 0, 70, 20]], float)  # goods half under a chair
    >>> orc.add(gt[[0, 2]], np.array([0.9, 0.9]), np.array([0, 1]), gt, np.array([0, 1, 1]))
    >>> orc.result()["per_class"]["goods"]
    [{'covered': '<0.2', 'instances': 1, 'recall': 1.0}, {'covered': '0.2-0.5', 'instances': 0, 'recall': None}, \
{'covered': '>=0.5', 'instances': 1, 'recall': 0.0}]
    """

    key = "covered"

    def __init__(self, class_names: list[str], edges: tuple[float, ...] = (0.2, 0.5), conf: float = 0.2):
        super().__init__(class_names, edges, conf)

    def _measure(self, gt_boxes: np.ndarray) -> np.ndarray:
        if len(gt_boxes) < 2:
            return np.zeros(len(gt_boxes))
        lo = np.maximum(gt_boxes[:, None, :2], gt_boxes[None, :, :2])
        hi = np.minimum(gt_boxes[:, None, 2:], gt_boxes[None, :, 2:])
        inter = np.clip(hi - lo, 0, None).prod(axis=2)
        np.fill_diagonal(inter, 0.0)
        area = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
        return inter.max(axis=1) / np.maximum(area, 1e-9)


class MissedAs:
    """What the objects missed at an operating confidence were taken for, per class: the class of the
    most confident prediction over a missed object (IoU 0.5), "merged" when that is a box of its own
    class already claimed by a neighbour, "nothing" when no box covers it. It tells confusion (a chair
    called goods) from blindness (a chair not boxed at all), which call for different fixes.

    >>> ma = MissedAs(["chair", "goods"], conf=0.2)
    >>> gt = np.array([[0, 0, 20, 40], [50, 0, 70, 40]], float)
    >>> ma.add(gt[:1], np.array([0.6]), np.array([1]), gt, np.array([0, 0]))
    >>> ma.result()["per_class"]
    {'chair': {'goods': 1, 'nothing': 1}, 'goods': {}}
    """

    def __init__(self, class_names: list[str], conf: float = 0.2):
        self.class_names, self.conf = list(class_names), conf
        self._taken_for: list[Counter[str]] = [Counter() for _ in class_names]

    def add(self, *image: np.ndarray) -> None:
        """One image, with `APAccumulator.add`'s arguments."""
        pred_cls, iou, _, gt_cls, found = _found_at(self.conf, len(self.class_names), *image)
        for g in np.flatnonzero(~found):
            over = np.flatnonzero(iou[:, g] >= IOU_THRESHOLDS[0])
            if not len(over):
                key = "nothing"
            elif pred_cls[over[0]] == gt_cls[g]:
                key = "merged"
            else:
                key = self.class_names[pred_cls[over[0]]]
            self._taken_for[gt_cls[g]][key] += 1

    def result(self) -> dict:
        return {
            "conf": self.conf,
            "iou": float(IOU_THRESHOLDS[0]),
            "per_class": {name: dict(self._taken_for[c].most_common()) for c, name in enumerate(self.class_names)},
        }


class FootageTally:
    """What a deployment boxes on real footage, frame by frame, at its operating confidence: boxes per class,
    the false occupation and dirty/uncovered truck boxes (the ones that would raise false cases), and how
    objects the taxonomy leaves as background (a bus, a motorbike) are boxed.

    Give it the boxes the deployed detector keeps (at `model.conf_threshold`). An occupation box counts as
    false unless it lies (IoU 0.5) on a labelled object of its own class; a dirty or uncovered truck box
    always does, since no real set labels a truck's state. An `unmapped` label (source class name and box)
    is boxed by every occupation or dirty/uncovered box over it at IoU 0.5.

    >>> t = FootageTally()
    >>> bus = np.array([[0, 0, 100, 50]], float)
    >>> t.add(["stall", "chair", "car"], np.array([[2, 0, 100, 50], [200, 0, 220, 40], [0, 0, 99, 50]], float),
    ...       ["chair"], np.array([[200, 0, 221, 40]], float), ["bus"], bus)
    >>> t.add([], np.zeros((0, 4)))
    >>> r = t.result()
    >>> r["occupation_per_frame"], r["occupation_boxes"], r["boxes_per_frame"]["chair"], r["unmapped"]
    (0.5, {'stall': 1}, 0.5, {'bus': {'labels': 1, 'boxes': 1, 'as': {'stall': 1}}})
    """

    def __init__(
        self,
        occupation: Iterable[str] = tuple(OCCUPATION_CLASSES),
        states: Iterable[str] = ("truck_dirty", "truck_uncovered"),
        iou: float = float(IOU_THRESHOLDS[0]),
    ):
        self.occupation, self.states, self.iou = frozenset(occupation), frozenset(states), iou
        self.frames = 0
        self._boxes: Counter[str] = Counter()
        self._false_occupation: Counter[str] = Counter()
        self._states: Counter[str] = Counter()
        self._unmapped_labels: Counter[str] = Counter()
        self._unmapped_as: dict[str, Counter[str]] = {}

    def add(
        self,
        names: Sequence[str],
        boxes: np.ndarray,
        truth_names: Sequence[str] = (),
        truth_boxes: np.ndarray | None = None,
        unmapped_names: Sequence[str] = (),
        unmapped_boxes: np.ndarray | None = None,
    ) -> None:
        """One frame: the kept boxes (class names, xyxy), its labelled objects and its unmapped ones."""
        names, boxes = np.asarray(names, str), np.asarray(boxes, float).reshape(-1, 4)
        self.frames += 1
        self._boxes.update(names.tolist())
        truth = np.asarray(truth_names, str)
        on_truth = (box_iou(boxes, _boxes(truth_boxes)) >= self.iou) & (names[:, None] == truth[None, :])
        occupation = np.isin(names, list(self.occupation))
        self._false_occupation.update(names[occupation & ~on_truth.any(axis=1)].tolist())
        state = np.isin(names, list(self.states))
        self._states.update(names[state].tolist())
        flagged = occupation | state
        unmapped = np.asarray(unmapped_names, str)
        over = box_iou(boxes[flagged], _boxes(unmapped_boxes)) >= self.iou
        self._unmapped_labels.update(unmapped.tolist())
        for source in set(unmapped.tolist()):
            boxed = over[:, unmapped == source].any(axis=1)
            self._unmapped_as.setdefault(source, Counter()).update(names[flagged][boxed].tolist())

    def result(self) -> dict:
        def per_frame(n: int) -> float | None:
            return round(n / self.frames, 4) if self.frames else None

        return {
            "frames": self.frames,
            "iou": self.iou,
            "boxes_per_frame": {c: per_frame(n) for c, n in sorted(self._boxes.items())},
            "occupation_per_frame": per_frame(self._false_occupation.total()),
            "occupation_boxes": dict(self._false_occupation.most_common()),
            "dirty_uncovered_per_frame": per_frame(self._states.total()),
            "dirty_uncovered_boxes": dict(self._states.most_common()),
            "unmapped": {
                source: {
                    "labels": n,
                    "boxes": self._unmapped_as[source].total(),
                    "as": dict(self._unmapped_as[source].most_common()),
                }
                for source, n in sorted(self._unmapped_labels.items())
            },
        }


def _boxes(boxes: np.ndarray | None) -> np.ndarray:
    return np.zeros((0, 4)) if boxes is None else np.asarray(boxes, float).reshape(-1, 4)
