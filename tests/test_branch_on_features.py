"""Training the dual detector's class branch on cached features: labels land where the detector sees the objects,
the mirror image is labelled mirrored, and training lowers the branch's class loss and raises its scores on them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, need

from pipeline.taxonomy import CLASSES

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics")

COCO_PT = SHARED / "models" / "yolov8n.pt"


@pytest.mark.parametrize(("height", "width"), [(360, 640), (480, 640), (640, 427), (1080, 1920), (200, 300)])
def test_a_labelled_box_lands_where_the_letterbox_puts_its_pixels(height, width):
    """A white rectangle drawn at a YOLO label's place, letterboxed as the detector letterboxes, is found at the
    box `Geometry.box` gives (within the resize's blur)."""
    import cv2
    from ultralytics.data.augment import LetterBox

    from training.branch_on_features import letterbox_geometry

    label = (0.6, 0.4, 0.3, 0.2)
    img = np.zeros((height, width, 3), np.uint8)
    cx, cy, w, h = label
    x1, y1 = round((cx - w / 2) * width), round((cy - h / 2) * height)
    x2, y2 = round((cx + w / 2) * width), round((cy + h / 2) * height)
    cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), -1)
    fed = LetterBox((640, 640), auto=True, stride=32)(image=img)
    geometry = letterbox_geometry(height, width)
    assert fed.shape[:2] == geometry.shape
    ys, xs = np.nonzero(fed[:, :, 0] > 127)
    found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    assert np.abs(found - geometry.box(*label, width, height)).max() <= 1.5


def test_label_files_are_read_and_bad_ones_refused(tmp_path):
    from training.branch_on_features import read_labels
    from training.dual_head import DualHeadError

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    image = tmp_path / "images" / "a.jpg"
    assert read_labels(image).shape == (0, 5)  # no label file: an image with nothing in it
    (tmp_path / "labels" / "a.txt").write_text("")
    assert read_labels(image).shape == (0, 5)  # an empty one: the same
    (tmp_path / "labels" / "a.txt").write_text("7 0.5 0.5 0.2 0.1\n")
    assert read_labels(image).tolist() == [[7.0, 0.5, 0.5, pytest.approx(0.2), pytest.approx(0.1)]]
    (tmp_path / "labels" / "a.txt").write_text(f"{len(CLASSES)} 0.5 0.5 0.2 0.1\n")
    with pytest.raises(DualHeadError, match="a.txt"):
        read_labels(image)
    (tmp_path / "labels" / "a.txt").write_text("3 0.5 0.5 0.2\n")
    with pytest.raises(DualHeadError, match="a.txt"):
        read_labels(image)


def _fresh_branch(tmp_path):
    from training.dual_head import branch_checkpoint

    ckpt = torch.load(branch_checkpoint(need(COCO_PT), tmp_path / "branch.pt"), weights_only=False)
    return ckpt["model"].model[-1].cv3.float().requires_grad_(True)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Six generated street images and their mirror images, cached."""
    from training.branch_on_features import cache
    from training.narrow_coco_head import training_images
    from training.synth.dataset import write_dataset

    data = write_dataset(
        tmp_path_factory.mktemp("synth") / "dataset", seed=19, count=8, size=(640, 360), progress=False
    )
    return cache(need(COCO_PT), training_images(data), threads=1)


def test_the_cache_holds_each_image_and_its_mirror_labelled_alike(samples):
    """COCO's boxes include one at IoU >= 0.5 around most labelled objects in both views, and the mirror's labels
    are the original's flipped about the middle."""
    from training.branch_on_features import letterbox_geometry

    width = letterbox_geometry(360, 640).shape[1]
    found = []
    for original, mirror in zip(samples[::2], samples[1::2], strict=True):
        assert np.array_equal(original[4], mirror[4])
        assert np.allclose(mirror[5][:, [0, 2]], width - original[5][:, [2, 0]])
        for view in (original, mirror):
            boxes = view[3][0]
            for g in view[5]:
                x1, y1 = np.maximum(boxes[:, 0], g[0]), np.maximum(boxes[:, 1], g[1])
                x2, y2 = np.minimum(boxes[:, 2], g[2]), np.minimum(boxes[:, 3], g[3])
                inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
                union = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (g[2] - g[0]) * (g[3] - g[1])
                found.append((inter / (union - inter)).max() >= 0.5)
    assert len(found) > 20 and np.mean(found) >= 0.8


def test_training_lowers_the_class_loss_and_raises_scores_on_the_objects(samples, tmp_path):
    """From a fresh branch (COCO's rows of each class or its look-alike), a few epochs on the cached views lower the
    loss, and the branch's score of each labelled object's class at the anchor nearest its centre goes up."""
    from training.branch_on_features import _stack, train
    from training.dual_head import per_anchor

    branch = _fresh_branch(tmp_path)

    def scores_on_objects():
        out = []
        with torch.no_grad():
            for i in range(len(samples)):
                feats, boxes, labels, gt, mask, _ = _stack(samples, [i])
                s = per_anchor(branch.eval(), feats, len(CLASSES)).sigmoid()[0]
                centres = (boxes[0, :, :2] + boxes[0, :, 2:]) / 2
                for c, g in zip(labels[0, mask[0, :, 0] > 0, 0], gt[0, mask[0, :, 0] > 0], strict=True):
                    inside = (boxes[0, :, 0] < g[2]) & (boxes[0, :, 2] > g[0])
                    near = ((centres - (g[:2] + g[2:]) / 2) ** 2).sum(1) + 1e9 * (~inside)
                    out.append(float(s[int(c), int(near.argmin())]))
        return np.array(out)

    before = scores_on_objects()
    history = train(branch, samples, epochs=4, lr=3e-3, batch=4, log=lambda _: None)
    after = scores_on_objects()
    assert history[-1] < history[0]
    assert after.mean() > before.mean() + 0.05


def test_with_validation_views_the_branch_is_kept_from_its_best_epoch(samples, tmp_path):
    """Trained with a learning rate too high to settle, the branch is left as it was at the epoch (its start
    counted) whose loss on the validation views was lowest, and says which."""
    import re

    from training.branch_on_features import mean_loss, train

    branch = _fresh_branch(tmp_path)
    train_views, val_views = samples[:8], samples[8:]
    log: list[str] = []
    train(branch, train_views, epochs=3, lr=0.05, batch=4, log=log.append, val=val_views)
    val_losses = [float(m.group(1)) for line in log if (m := re.search(r"val loss ([0-9.]+)$", line))]
    assert len(val_losses) == 4  # the start and three epochs
    kept = int(re.search(r"kept epoch (\d+)", log[-1]).group(1))
    assert val_losses[kept] == min(val_losses[:4])
    assert mean_loss(branch, val_views) == pytest.approx(min(val_losses[:4]), rel=1e-4)


def test_a_held_view_asks_only_that_the_branch_keep_its_start_scores(samples, tmp_path):
    """On held views the loss is 0 while the branch scores them as it began (in eval mode: in training mode its
    batch norms use the batch's statistics), whatever their labels say; the same views not held carry their
    labels' class loss."""
    from training.branch_on_features import Hold, _assigner, _stack, loss_of

    branch = _fresh_branch(tmp_path).eval()
    held = [(*s[:6], True) for s in samples[:4]]
    hold = Hold.of(branch)
    assert float(loss_of(branch, _stack(held, [0, 1, 2, 3]), _assigner(), hold)) == pytest.approx(0.0, abs=1e-2)
    assert float(loss_of(branch, _stack(samples, [0, 1, 2, 3]), _assigner(), hold)) > 0.5


def test_training_with_hold_keeps_the_held_views_scores_and_learns_the_others(samples, tmp_path):
    """Trained hard on the same views, a branch held on the first four keeps its scores there far closer to its
    start than one trained on their labels, and still learns the views that are not held."""
    from training.branch_on_features import _stack, mean_loss, train
    from training.dual_head import per_anchor

    views = [(*s[:6], True) if i < 4 else s for i, s in enumerate(samples)]

    def scores(branch, idx):
        with torch.no_grad():
            return per_anchor(branch.eval(), _stack(views, idx)[0], len(CLASSES)).sigmoid()

    drift = {}
    for hold in (None, 1.0):
        branch = _fresh_branch(tmp_path)
        start = scores(branch, [0, 1, 2, 3])
        before = mean_loss(branch, samples[4:])
        train(branch, views, epochs=4, lr=3e-3, batch=4, log=lambda _: None, hold=hold)
        drift[hold] = float((scores(branch, [0, 1, 2, 3]) - start).abs().mean())
        assert mean_loss(branch, samples[4:]) < before
    assert drift[1.0] < 0.5 * drift[None]
