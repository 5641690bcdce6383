"""training.metrics: AP on hand-computed cases, and agreement with Ultralytics' own validator maths.

Hand values follow the definition both share: the precision envelope sampled at 101 recall points
(0, 0.01, ..., 1) and integrated with the trapezoid rule, precision falling to 0 at the highest recall
reached. So a perfect class scores 0.995, not 1: the last interval (0.99 -> 1) ramps from 1 down to 0.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from training.metrics import IOU_THRESHOLDS, APAccumulator, MissedAs, OverlapRecall, SizeRecall, box_iou

GT = np.array([[0.0, 0, 100, 100]])
ELSEWHERE = np.array([[200.0, 200, 260, 260]])


def one_image(pred_boxes, pred_conf, pred_cls, gt_boxes=GT, gt_cls=(0,), names=("a", "b")) -> dict:
    acc = APAccumulator(list(names))
    acc.add(np.asarray(pred_boxes, float), np.asarray(pred_conf), np.asarray(pred_cls), gt_boxes, np.asarray(gt_cls))
    return acc.result()


def test_perfect_predictions_score_the_interpolation_ceiling():
    acc = APAccumulator(["a", "b"])
    acc.add(GT, [0.9], [0], GT, [0])
    acc.add(ELSEWHERE, [0.8], [1], ELSEWHERE, [1])
    r = acc.result()
    assert r["map50"] == pytest.approx(0.995)
    assert r["map50_95"] == pytest.approx(0.995)
    assert r["per_class_ap50"] == {"a": 0.995, "b": 0.995}
    assert r["instances"] == {"a": 1, "b": 1}


def test_false_positive_ranked_above_the_true_positive_halves_precision():
    # Ranked: FP (p=0), TP (p=1/2, r=1). The envelope is 1/2 on [0, 1) and 0 at 1: 0.5 * 0.995.
    r = one_image(np.vstack([ELSEWHERE, GT]), [0.9, 0.8], [0, 0])
    assert r["map50"] == pytest.approx(0.4975)


def test_false_positive_ranked_below_the_true_positive_costs_nothing():
    r = one_image(np.vstack([GT, ELSEWHERE]), [0.9, 0.8], [0, 0])
    assert r["map50"] == pytest.approx(0.995)


def test_missed_ground_truth_caps_recall():
    # One of two objects found: precision 1 up to recall 0.5, then 0. Trapezoids: 0.49 + 0.01 * (1 + 0) / 2.
    r = one_image(GT, [0.9], [0], gt_boxes=np.vstack([GT, ELSEWHERE]), gt_cls=(0, 0))
    assert r["map50"] == pytest.approx(0.495)
    assert r["instances"]["a"] == 2


def test_class_confusion_is_a_miss_and_a_false_positive():
    r = one_image(GT, [0.9], [1])
    # "b" has no ground truth: it has no AP and does not dilute the mean.
    assert r["per_class_ap50"] == {"a": 0.0, "b": None}
    assert r["map50"] == 0.0
    assert r["map50_95"] == 0.0


def test_iou_thresholds_of_map50_95():
    # IoU 0.72: a hit at 0.50, 0.55, 0.60, 0.65, 0.70 and a miss at 0.75 ... 0.95.
    pred = np.array([[0.0, 0, 100, 72]])
    assert box_iou(pred, GT)[0, 0] == pytest.approx(0.72)
    r = one_image(pred, [0.9], [0])
    assert r["map50"] == pytest.approx(0.995)
    assert r["map50_95"] == pytest.approx(0.995 * 5 / 10)
    assert r["per_class_ap50_95"]["a"] == pytest.approx(0.4975, abs=1e-4)
    np.testing.assert_allclose(IOU_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_the_more_confident_duplicate_claims_the_object():
    # Both boxes overlap the one object: the confident loose one (IoU 0.62) claims it at 0.50 to 0.60;
    # from 0.65 on it is too loose and the tight one (IoU 0.97) claims it, ranked second (p = 1/2).
    loose, tight = [[0.0, 0, 100, 62]], [[0.0, 0, 100, 97]]
    r = one_image(np.vstack([tight, loose]), [0.8, 0.9], [0, 0])  # order given does not matter
    assert r["map50"] == pytest.approx(0.995)
    assert r["map50_95"] == pytest.approx((3 * 0.995 + 7 * 0.4975) / 10)


def test_no_predictions_at_all():
    acc = APAccumulator(["a"])
    acc.add(np.zeros((0, 4)), [], [], GT, [0])
    assert acc.result()["per_class_ap50"] == {"a": 0.0}


@pytest.mark.parametrize(
    "args, message",
    [
        ((GT, [0.9, 0.8], [0], GT, [0]), "disagree in length"),
        ((GT, [0.9], [0], GT, [0, 1]), "disagree in length"),
        ((GT, [0.9], [2], GT, [0]), "outside 0..1"),
    ],
)
def test_bad_input_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        APAccumulator(["a", "b"]).add(*args)


def random_image(rng: np.random.Generator, nc: int) -> tuple[np.ndarray, ...]:
    """Ground truth, and predictions that jitter it (some with the wrong class) plus random clutter."""
    n_gt = int(rng.integers(0, 6))
    xy = rng.uniform(0, 500, (n_gt, 2))
    gt = np.hstack([xy, xy + rng.uniform(20, 150, (n_gt, 2))])
    gt_cls = rng.integers(0, nc, n_gt)
    found = rng.random(n_gt) < 0.8
    jittered = gt[found] + rng.normal(0, 8, (int(found.sum()), 4))
    jittered_cls = np.where(rng.random(len(jittered)) < 0.15, rng.integers(0, nc, len(jittered)), gt_cls[found])
    n_clutter = int(rng.integers(0, 4))
    cxy = rng.uniform(0, 500, (n_clutter, 2))
    clutter = np.hstack([cxy, cxy + rng.uniform(20, 150, (n_clutter, 2))])
    boxes = np.vstack([jittered, clutter])
    cls = np.concatenate([jittered_cls, rng.integers(0, nc, n_clutter)])
    return boxes, rng.random(len(boxes)), cls, gt, gt_cls


def ultralytics_maps(images: list[tuple[np.ndarray, ...]], nc: int) -> tuple[float, float, dict[int, float]]:
    """mAP50, mAP50-95 and per-class AP50 the way Ultralytics' DetectionValidator computes them."""
    torch = pytest.importorskip("torch")
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import ap_per_class
    from ultralytics.utils.metrics import box_iou as ul_box_iou

    validator = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    tps, confs, pcls, tcls = [], [], [], []
    for boxes, conf, cls, gt, gt_cls in images:
        order = np.argsort(-conf)  # the validator receives NMS output, best first
        boxes, conf, cls = boxes[order], conf[order], cls[order]
        iou = ul_box_iou(torch.tensor(gt), torch.tensor(boxes))
        tp = BaseValidator.match_predictions(validator, torch.tensor(cls), torch.tensor(gt_cls), iou)
        tps.append(tp.numpy())
        confs.append(conf)
        pcls.append(cls)
        tcls.append(gt_cls)
    out = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls), np.concatenate(tcls))
    ap, classes = out[5], out[6]
    return float(ap[:, 0].mean()), float(ap.mean()), {int(c): float(ap[i, 0]) for i, c in enumerate(classes)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_ultralytics_on_random_data(seed):
    nc = 3
    rng = np.random.default_rng(seed)
    images = [random_image(rng, nc) for _ in range(40)]
    acc = APAccumulator(["a", "b", "c"])
    for boxes, conf, cls, gt, gt_cls in images:
        acc.add(boxes, conf, cls, gt, gt_cls)
    ours = acc.result()
    map50, map50_95, per_class = ultralytics_maps(images, nc)
    assert 0.3 < map50 < 0.99  # the data leaves room for both matching and ranking to matter
    assert ours["map50"] == pytest.approx(map50, abs=1e-6)
    assert ours["map50_95"] == pytest.approx(map50_95, abs=1e-6)
    for c, name in enumerate(["a", "b", "c"]):
        assert ours["per_class_ap50"][name] == pytest.approx(per_class[c], abs=1e-4)  # reported to 4 places


def test_size_recall_finds_each_object_once_and_buckets_by_height():
    sr = SizeRecall(["a", "b"], edges_px=(24, 96), conf=0.5)
    near_twins = np.array([[0.0, 0, 50, 50], [2.0, 0, 52, 50]])  # two 50-px objects, one prediction over both
    sr.add(near_twins[:1], [0.9], [0], near_twins, [0, 0])
    sr.add(np.array([[0.0, 0, 100, 100]]), [0.4], [1], np.array([[0.0, 0, 100, 100]]), [1])  # under conf
    rows = sr.result()["per_class"]
    assert [r["height_px"] for r in rows["a"]] == ["<24", "24-96", ">=96"]
    assert rows["a"][1] == {"height_px": "24-96", "instances": 2, "recall": 0.5}
    assert rows["b"][2] == {"height_px": ">=96", "instances": 1, "recall": 0.0}
    assert rows["a"][0]["recall"] is None
    with pytest.raises(ValueError, match="class index outside"):  # checked as AP's input is
        sr.add(near_twins[:1], [0.9], [2], near_twins, [0, 0])


@pytest.mark.parametrize("edges", [(), (48, 24), (0, 24)])
def test_size_recall_refuses_unordered_edges(edges):
    with pytest.raises(ValueError, match="ascending"):
        SizeRecall(["a"], edges_px=edges)


def test_overlap_recall_bins_each_object_by_the_most_any_other_box_covers_of_it():
    orc = OverlapRecall(["chair", "goods"], conf=0.5)
    chair = [0.0, 0, 40, 40]
    behind = [30.0, 0, 50, 40]  # half of it under the chair (and a tenth of the chair's box under it)
    edge = [0.0, 36, 40, 76]  # a tenth of it under the chair
    gt = np.array([chair, behind, edge])
    orc.add(np.array([chair, edge]), [0.9, 0.9], [0, 1], gt, [0, 1, 1])
    rows = orc.result()["per_class"]
    assert rows["goods"] == [
        {"covered": "<0.2", "instances": 1, "recall": 1.0},
        {"covered": "0.2-0.5", "instances": 0, "recall": None},
        {"covered": ">=0.5", "instances": 1, "recall": 0.0},
    ]
    assert rows["chair"][1] == {"covered": "0.2-0.5", "instances": 1, "recall": 1.0}  # 0.25 under `behind`
    lone = OverlapRecall(["chair"])
    lone.add(np.zeros((0, 4)), [], [], np.array([chair]), [0])
    assert lone.result()["per_class"]["chair"][0] == {"covered": "<0.2", "instances": 1, "recall": 0.0}


def test_missed_as_names_the_most_confident_box_over_a_missed_object():
    ma = MissedAs(["chair", "table", "goods"], conf=0.3)
    chair, twin, alone = [0.0, 0, 20, 40], [2.0, 0, 22, 40], [100.0, 0, 120, 40]
    gt = np.array([chair, twin, alone])
    # Over the first chair: a table (0.7) above a goods box (0.5); a chair box (0.9) claims the twin
    # and also covers the first chair; a goods box under conf (0.2) covers the lone chair.
    ma.add(np.array([twin, chair, chair, alone]), [0.9, 0.7, 0.5, 0.2], [0, 1, 2, 2], gt, [0, 0, 0])
    assert ma.result()["per_class"]["chair"] == {"merged": 1, "nothing": 1}
    ma = MissedAs(["chair", "table", "goods"], conf=0.3)
    ma.add(np.array([chair, chair]), [0.5, 0.7], [2, 1], gt[:1], [0])
    assert ma.result() == {"conf": 0.3, "iou": 0.5, "per_class": {"chair": {"table": 1}, "table": {}, "goods": {}}}
