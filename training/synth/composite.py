"""Rendered items on real photographs: what the generator alone can teach (stalls, carts, goods, dirty and
uncovered trucks) cut out of a rendered street and pasted onto a real photo, so a detector learns those
classes against real backgrounds, real cars and real people instead of against rendered ones.

The rendered scene's id map says which object owns each pixel, so the cut follows the object's outline and
anything that stood in front of it in the rendered street is left out. The real photo keeps its own labels,
except objects mostly covered by what was pasted. Capture conditions (night, rain, blur, noise, JPEG) are then
applied to the whole composite, and sometimes an infrared look, so pasted and real pixels share one sensor.

>>> import numpy as np
>>> bg = np.full((240, 320, 3), 90, np.uint8)
>>> img, labels = composite(np.random.default_rng(2), bg, [], (320, 180))
>>> img.shape, all(0 <= b[0] < b[2] <= 320 for _, b in labels)
((180, 320, 3), True)
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.taxonomy import CLASSES
from training.synth.effects import Conditions
from training.synth.scene import MAX_REDRAWS, paint, populate, sample_camera
from training.synth.street import StreetLayout, render_backdrop

# What is cut out of the rendered street: the classes no real photo here shows, and clean trucks beside them
# (the same sprites without mud or load, so the difference is what is learnt, not the rendering).
PASTED = frozenset({"stall", "cart", "goods", "truck", "truck_dirty", "truck_uncovered"})
MAX_COVERED = 0.5  # a real object more than half covered by pasted pixels loses its label
INFRARED_SHARE = 0.1  # composites given a monochrome near-infrared look, as cameras switch to at night
Box = tuple[float, float, float, float]


def fit_background(photo: np.ndarray, labels: list[tuple[int, Box]], size: tuple[int, int], rng: np.random.Generator):
    """`photo` scaled to cover `size` (w, h) and cropped at a random place, with its pixel boxes moved along
    (boxes left with under half their area are dropped)."""
    w, h = size
    ph, pw = photo.shape[:2]
    scale = max(w / pw, h / ph)
    sw, sh = max(w, round(pw * scale)), max(h, round(ph * scale))
    scaled = cv2.resize(photo, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = int(rng.integers(0, sw - w + 1)), int(rng.integers(0, sh - h + 1))
    out = []
    for cls, (bx0, by0, bx1, by1) in labels:
        full = (bx1 - bx0) * (by1 - by0) * scale * scale
        cx0, cy0 = max(0.0, bx0 * scale - x0), max(0.0, by0 * scale - y0)
        cx1, cy1 = min(float(w), bx1 * scale - x0), min(float(h), by1 * scale - y0)
        if cx1 - cx0 >= 4 and cy1 - cy0 >= 4 and (cx1 - cx0) * (cy1 - cy0) >= 0.5 * full:
            out.append((cls, (cx0, cy0, cx1, cy1)))
    return scaled[y0 : y0 + h, x0 : x0 + w].copy(), out


def composite(
    rng: np.random.Generator, photo: np.ndarray, photo_labels: list[tuple[int, Box]], size: tuple[int, int]
) -> tuple[np.ndarray, list[tuple[int, Box]]]:
    """One composite of `size` (w, h): rendered PASTED objects over `photo` (BGR) whose pixel-box labels are
    `photo_labels` [(class id, (x0, y0, x1, y1))]; returns the image and all its labels in the same form."""
    background, kept_real = fit_background(photo, photo_labels, size, rng)
    for _ in range(MAX_REDRAWS):
        layout = StreetLayout.sample(rng)
        cam = sample_camera(rng, layout, size)
        placed = populate(rng, layout, cam)
        painter, labels = paint(cam, layout, render_backdrop(layout, cam, night=False), placed)
        pasted = [lab for lab in labels if CLASSES[lab.class_id] in PASTED]
        if pasted:
            break
    cond = Conditions.sample(rng)
    mask = np.isin(painter.ids, [lab.index + 1 for lab in pasted])
    img = _blend(background, painter.img, mask)
    covered = mask.astype(np.float32)
    out = [(lab.class_id, lab.box) for lab in pasted]
    for cls, box in kept_real:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if covered[y0:y1, x0:x1].mean() <= MAX_COVERED:
            out.append((cls, box))
    img = cond.apply(img, np.zeros(img.shape[:2], np.uint8), [], cam.horizon_y, rng)
    if rng.random() < INFRARED_SHARE:
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        img = cv2.cvtColor(cv2.equalizeHist(grey), cv2.COLOR_GRAY2BGR)
    return img, out


def _blend(background: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rendered pixels where `mask` is set, brought to the photo's brightness, with a one-pixel soft edge."""
    if not mask.any():
        return background
    bg_mean = float(background.mean()) + 1.0
    fg_mean = float(rendered[mask].mean()) + 1.0
    gain = float(np.clip(bg_mean / fg_mean, 0.6, 1.4))
    fg = np.clip(rendered.astype(np.float32) * gain, 0, 255)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)[..., None]
    return (fg * alpha + background.astype(np.float32) * (1 - alpha)).astype(np.uint8)
