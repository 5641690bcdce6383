"""The real plate sets in ../shared/data and their fixed parts.

`plates_blue_crops/` (1000 real 94x24 blue plate crops, text = file name) is split by a hash of the file
name, so the split never depends on listing order or on what else is in the folder: the 300 names with the
smallest SHA-256 are the held-out part that figures are reported on; the other 700 calibrate the reporting
thresholds. The text recogniser is trained on none of them; the province classifier learns from the first
PROVINCE_TRAINED calibration crops (by hash) and its thresholds are chosen on the rest.

>>> split_crops([(Path(f"{i}.jpg"), "") for i in range(5)], held_out=2)[1]  # doctest: +ELLIPSIS
[(PosixPath('...'), ''), (PosixPath('...'), '')]
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BLUE_CROPS = SHARED / "real" / "plates_blue_crops"
CCPD_PHOTOS = SHARED / "images" / "plates"
# Expected texts as given in ../shared/data/SOURCES.md.
CCPD_EXPECTED = {"ccpd_demo0.jpg": "皖A195K9", "ccpd_demo1.jpg": "皖AUJ299", "ccpd_demo2.jpg": "皖AT022C"}
HELD_OUT = 300
PROVINCE_TRAINED = 400

Crop = tuple[Path, str]


def load_crops(root: Path = BLUE_CROPS) -> list[Crop]:
    """(image path, plate text) for every row of `root`/labels.csv."""
    with (root / "labels.csv").open(encoding="utf-8") as f:
        return [(root / row["file"], row["plate_text"]) for row in csv.DictReader(f)]


def split_crops(crops: list[Crop], held_out: int = HELD_OUT) -> tuple[list[Crop], list[Crop]]:
    """(calibration, held-out): the `held_out` crops whose file names hash lowest are held out."""
    ranked = sorted(crops, key=lambda c: hashlib.sha256(c[0].name.encode()).hexdigest())
    return ranked[held_out:], ranked[:held_out]


def province_training_crops(calibration: list[Crop]) -> list[Crop]:
    """The calibration crops (in `split_crops` order) the province classifier learns from."""
    return calibration[:PROVINCE_TRAINED]


def province_check_crops(calibration: list[Crop]) -> list[Crop]:
    """The calibration crops (in `split_crops` order) the province check's thresholds are chosen on: the
    classifier never saw them."""
    return calibration[PROVINCE_TRAINED:]
