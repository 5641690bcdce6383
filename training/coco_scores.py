"""Keep COCO's own scores while a network trains for feixian's classes (`feixian train --keep-coco-scores`).

Ultralytics' feature distillation (`distill_model`) holds a student's neck features to its teacher's, but not
the class rows that read them: trained whole on rendered chairs and tables that outnumber the real ones, the v19
trial kept its neck and still forgot coco128's real chairs (AP50 0.50 -> 0.01, docs/experiments.md). Here the
teacher's scores of the classes it shares with feixian are targets too, at every anchor of every image, except
inside a labelled box of that very class where the teacher is unsure: there the label decides (a rendered chair
COCO does not see is still a chair). Trucks are left out: the student must split them into plain, dirty and
uncovered, which COCO's one truck score would blur.

>>> import torch
>>> teacher = torch.full((1, 80, 4), -9.0)  # 4 anchors, COCO sure there is nothing at any
>>> unsure, agrees = torch.zeros(1, 11, 4), torch.full((1, 11, 4), -9.0)
>>> outside = torch.zeros(1, 11, 4, dtype=torch.bool)
>>> round(float(score_loss(unsure, teacher, outside)), 1), abs(round(float(score_loss(agrees, teacher, outside)), 3))
(13.8, 0.0)
>>> float(score_loss(unsure, teacher, torch.ones(1, 11, 4, dtype=torch.bool)))  # all inside labelled boxes
0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.distill_model import DistillationModel
from ultralytics.utils.ops import xywh2xyxy
from ultralytics.utils.tal import make_anchors
from ultralytics.utils.torch_utils import unwrap_model

from pipeline.taxonomy import CLASSES
from training.real_sets import COCO80, COCO_TO_FEIXIAN

KEPT = ("person", "car", "chair", "table", "umbrella")
# A teacher's score from which it is taken as a target even inside a labelled box of the class: there COCO sees a
# real object (it is blind to rendered furniture), and the student must keep seeing it as COCO does.
SURE = 0.5
# (student row in CLASSES, teacher row in COCO80) of each class whose COCO score is kept.
ROWS: tuple[tuple[int, int], ...] = tuple(
    (CLASSES.index(ours), COCO80.index(theirs)) for theirs, ours in COCO_TO_FEIXIAN.items() if ours in KEPT
)


def inside_labelled_boxes(
    anchors: torch.Tensor, boxes: torch.Tensor, classes: torch.Tensor, image_of: torch.Tensor, n_images: int
) -> torch.Tensor:
    """(n_images, len(CLASSES), anchors) bool: whether each anchor point (x, y in pixels) lies inside a labelled
    box (x1, y1, x2, y2 in pixels) of that class in that image.

    >>> a = torch.tensor([[5.0, 5.0], [50.0, 50.0]])
    >>> m = inside_labelled_boxes(a, torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([2]), torch.tensor([0]), 1)
    >>> m[0, 2].tolist(), bool(m[0, 0].any())
    ([True, False], False)
    """
    out = torch.zeros(n_images, len(CLASSES), anchors.shape[0], dtype=torch.int32, device=anchors.device)
    if boxes.numel():
        x, y = anchors[:, 0], anchors[:, 1]
        hit = (
            (x >= boxes[:, 0:1]) & (x <= boxes[:, 2:3]) & (y >= boxes[:, 1:2]) & (y <= boxes[:, 3:4])
        )  # (boxes, anchors)
        out.index_put_((image_of.long(), classes.long()), hit.int(), accumulate=True)
    return out > 0


def score_loss(student: torch.Tensor, teacher: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the student's logits (images, len(CLASSES), anchors) of the kept classes against
    the teacher's probabilities (images, 80 logits, anchors), over every anchor outside a labelled box of the
    class and every anchor the teacher is sure of (a real chair, labelled or not), less the targets' entropy (0
    where they agree); normalised as Ultralytics' class loss is (by the sum of the targets, at least 1)."""
    ours = torch.tensor([s for s, _ in ROWS], device=student.device)
    theirs = torch.tensor([t for _, t in ROWS], device=student.device)
    target = teacher.detach()[:, theirs].float().sigmoid()
    return soft_target_loss(student[:, ours], target, ~inside[:, ours] | (target >= SURE))


def soft_target_loss(logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of `logits` against the probabilities `target` (any shape, the same), less the
    targets' own entropy so that logits agreeing with their targets log 0 (the gradient is the same), summed where
    `keep` (everywhere without it) and normalised as Ultralytics' class loss is (by the kept targets' sum, at least 1).

    >>> t = torch.tensor([0.9, 0.1])
    >>> abs(round(float(soft_target_loss(torch.logit(t), t)), 4)), round(float(soft_target_loss(torch.zeros(2), t)), 3)
    (0.0, 0.736)
    """
    target = target.detach().float()
    bce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    bce = bce - F.binary_cross_entropy(target, target, reduction="none")
    if keep is not None:
        bce, target = bce * keep, target * keep
    return bce.sum() / target.sum().clamp(min=1.0)


class CocoScoreDistillation(DistillationModel):
    """Ultralytics' feature distillation plus the teacher's scores of `KEPT` (`score_loss`), weighted by `gain`;
    a module-level class, so the checkpoints Ultralytics pickles load again."""

    def __init__(self, teacher_model, student_model, gain: float):
        super().__init__(teacher_model, student_model)
        self.gain = gain

    def loss(self, batch, preds=None):
        total, items = super().loss(batch, preds)
        if not self.training:
            return total, items
        n = len(self.feats_idx) - 1  # the head's captured output is stored under the last level
        student, teacher = self._student_feats[n], self.decouple_outputs(self._teacher_feats[n])
        kept = self.kept_loss(student, teacher["scores"], batch) * self.gain
        items["dis_loss"] = items["dis_loss"] + kept.detach()
        return torch.cat([total[:-1], total[-1:] + kept * batch["img"].shape[0]]), items

    def kept_loss(self, student: dict, teacher_scores: torch.Tensor, batch: dict) -> torch.Tensor:
        """The loss that holds the student's head outputs `student` (Ultralytics' dict: scores, feats) to the
        teacher's class logits: `score_loss`, outside the labelled boxes of each class."""
        img = batch["img"]
        points, strides = make_anchors(student["feats"], self.student_model.stride, 0.5)
        h, w = img.shape[2:]
        boxes = xywh2xyxy(batch["bboxes"] * torch.tensor([w, h, w, h], device=img.device))
        inside = inside_labelled_boxes(points * strides, boxes, batch["cls"].view(-1), batch["batch_idx"], img.shape[0])
        return score_loss(student["scores"], teacher_scores, inside)


class CocoScoreTrainer(DetectionTrainer):
    """Ultralytics' detection trainer with its student wrapped in `CocoScoreDistillation` (teacher:
    `distill_model`, gain: the class attribute `gain`, set by `trainer`) before Ultralytics would wrap it in
    plain feature distillation."""

    gain = 1.0
    distillation = CocoScoreDistillation

    def set_model_attributes(self):
        super().set_model_attributes()
        if not isinstance(unwrap_model(self.model), DistillationModel):
            self.model = self.distillation(self.args.distill_model, self.model, self.gain)


def trainer(gain: float) -> type[CocoScoreTrainer]:
    """The trainer class to hand Ultralytics' `YOLO.train(trainer=...)` for score distillation at `gain`."""
    return type("CocoScoreTrainer", (CocoScoreTrainer,), {"gain": gain})
