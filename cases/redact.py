"""Blurring published evidence images (双公示, DESIGN.md §3 requirement 11): faces and plates never leave the
bureau readable.

The evidence stores no face or plate boxes: its key frames record the detector's boxes of the objects seen
(`objects` of each key frame in the manifest: class and box). So a face is covered by blurring the whole box of
every person (a face lies inside its person's box, wherever the person looks), and a plate by blurring the lower
`plate_share` of every car and truck box across its full width (plates hang on the bumpers, in the lower part
of the box, front or back). Boxes are grown by `pad` of their size on every side first, so a box drawn a little
tight still covers. The caller may add boxes found afresh in the image (`feixian publicity export` runs the
deployed detector over each image, so a passer-by the evidence did not record is blurred too).

Blurring is a mosaic of `cell`-pixel blocks followed by a Gaussian blur: a mosaic alone can be partly undone,
a light blur alone leaves plate characters legible.

>>> import numpy as np
>>> image = np.tile(np.arange(100, dtype=np.uint8), (100, 1))[:, :, None].repeat(3, axis=2)
>>> regions = regions_to_blur([{"class": "truck", "box": [10, 10, 60, 60]}], image.shape, BlurSettings())
>>> regions
[(7, 39, 63, 61)]
>>> blurred = blur(image, regions, BlurSettings())
>>> bool((blurred[40:60, 10:60] != image[40:60, 10:60]).any()), bool((blurred[:20] == image[:20]).all())
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from pydantic import Field

from feixian.domain import StrictModel

PERSON_CLASSES = frozenset({"person"})
VEHICLE_CLASSES = frozenset({"car", "truck", "truck_dirty", "truck_uncovered"})
Region = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2 and y2 exclusive


class BlurSettings(StrictModel):
    """How published images are blurred."""

    plate_share: float = Field(
        default=0.4, gt=0, le=1, description="Lower share of a car or truck box blurred as its plate's region."
    )
    pad: float = Field(default=0.05, ge=0, le=0.5, description="Each box grows by this share of its size per side.")
    cell: int = Field(default=12, ge=4, le=64, description="Mosaic block size in pixels before the Gaussian blur.")


def regions_to_blur(objects: Iterable[Mapping[str, Any]], shape: Sequence[int], s: BlurSettings) -> list[Region]:
    """The pixel regions to blur in an image of `shape` for the `objects` seen in it ({"class", "box"})."""
    height, width = shape[0], shape[1]
    regions = []
    for obj in objects:
        x1, y1, x2, y2 = (float(v) for v in obj["box"])
        if obj["class"] in VEHICLE_CLASSES:
            y1 = y2 - (y2 - y1) * s.plate_share
        elif obj["class"] not in PERSON_CLASSES:
            continue
        dx, dy = (x2 - x1) * s.pad, (y2 - y1) * s.pad
        box = (int(np.floor(x1 - dx)), int(np.floor(y1 - dy)), int(np.ceil(x2 + dx)), int(np.ceil(y2 + dy)))
        clipped = (max(0, box[0]), max(0, box[1]), min(width, box[2]), min(height, box[3]))
        if clipped[0] < clipped[2] and clipped[1] < clipped[3]:
            regions.append(clipped)
    return regions


def blur(image: np.ndarray, regions: Iterable[Region], s: BlurSettings) -> np.ndarray:
    """A copy of `image` (HxWx3) with every region mosaicked and blurred."""
    out = image.copy()
    for x1, y1, x2, y2 in regions:
        patch = out[y1:y2, x1:x2]
        h, w = patch.shape[:2]
        small = cv2.resize(patch, (max(1, w // s.cell), max(1, h // s.cell)), interpolation=cv2.INTER_AREA)
        mosaic = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        kernel = 2 * (s.cell // 2) + 1
        out[y1:y2, x1:x2] = cv2.GaussianBlur(mosaic, (kernel, kernel), 0)
    return out
