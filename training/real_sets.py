"""The real labelled photo sets in `../shared/data/real/`, their class maps onto feixian's classes and their
fixed train/test splits.

Each set labels some classes exhaustively (`labelled`: every object of those classes in every image carries
a box); the others, even where they show (a pedestrian in a vehicle photo), are unlabelled, so a teacher may
fill them in (`training.real_dataset`). A source class that maps to nothing (a bus, a motorbike, a bench) is
left as background: feixian must never box it as an occupation item or a truck.

The test part of every set is fixed here and never trained on, so every figure on it is held out.

>>> s = REAL_SETS["highway_night"]
>>> s.map_class("car"), s.map_class("bus"), sorted(s.labelled)
('car', None, ['car', 'truck'])
>>> s.split_of("anything.jpg", "test")
'test'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.taxonomy import CLASSES

# The 80 COCO classes in COCO's order (Ultralytics' coco128.yaml); coco128's labels use these ids.
COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# COCO classes that are feixian classes under another name. Benches are left out on purpose: a public bench
# is street furniture, not a chair put out by a shop, and suitcases are carried, not piled.
COCO_TO_FEIXIAN: dict[str, str] = {
    "person": "person",
    "car": "car",
    "truck": "truck",
    "chair": "chair",
    "dining table": "table",
    "umbrella": "umbrella",
}
# What COCO (and so a COCO teacher) knows of feixian's classes; the rest only the generator can teach.
COCO_KNOWN: frozenset[str] = frozenset(COCO_TO_FEIXIAN.values())
# Class maps a foreign detector is evaluated through, by the name `feixian eval --class-map` takes.
CLASS_MAPS: dict[str, dict[str, str]] = {"coco": COCO_TO_FEIXIAN}


@dataclass(frozen=True)
class RealSet:
    """One real photo set: where its images and YOLO labels lie, its class names, how they map onto
    feixian's, and which images are held out for testing.

    `splits` maps a folder under `root` to "train" or "test" ("split" means: decided per image by
    `test_share` from a hash of the file name, so the split never changes when files are added)."""

    name: str
    root: str  # relative to the shared data folder
    names: tuple[str, ...]
    class_map: dict[str, str]
    splits: dict[str, str]
    test_share: float = 0.0
    labelled: frozenset[str] = field(default_factory=frozenset)

    def map_class(self, source_name: str) -> str | None:
        return self.class_map.get(source_name)

    def split_of(self, file_name: str, folder_split: str) -> str:
        if folder_split != "split":
            return folder_split
        digest = hashlib.sha256(Path(file_name).name.encode()).digest()
        return "test" if digest[0] / 256 < self.test_share else "train"

    def images(self, data_root: Path, split: str) -> list[Path]:
        """Images of this set in `split` ("train" or "test"), sorted."""
        out = []
        for folder, folder_split in self.splits.items():
            for img in sorted((data_root / self.root / folder / "images").glob("*.jpg")):
                if self.split_of(img.name, folder_split) == split:
                    out.append(img)
        return out

    def source_labels(self, image: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
        """The image's boxes under the set's own class names: (name, normalised cx, cy, w, h). A missing label
        file means no object."""
        label = image.parent.parent / "labels" / (image.stem + ".txt")
        if not label.is_file():
            return []
        out = []
        for line in label.read_text().splitlines():
            parts = line.split()
            if len(parts) == 5:
                out.append((self.names[int(parts[0])], tuple(float(v) for v in parts[1:])))
        return out

    def labels(self, image: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
        """The image's boxes mapped onto feixian's classes: (class, normalised cx, cy, w, h); unmapped classes
        are dropped."""
        return [(cls, box) for name, box in self.source_labels(image) if (cls := self.map_class(name)) is not None]


REAL_SETS: dict[str, RealSet] = {
    s.name: s
    for s in (
        RealSet(
            name="coco128",
            root="real/coco128",
            names=COCO80,
            class_map=COCO_TO_FEIXIAN,
            splits={".": "split"},
            test_share=0.35,
            labelled=COCO_KNOWN,
        ),
        RealSet(
            name="vehicles_openimages",
            root="real/vehicles_openimages",
            names=("ambulance", "bus", "car", "motorcycle", "truck"),
            class_map={"car": "car", "truck": "truck"},
            splits={"train": "train", "valid": "train", "test": "test"},
            labelled=frozenset({"car", "truck"}),
        ),
        RealSet(
            name="highway_night",
            root="real/highway_night",
            names=("bike", "bus", "car", "truck"),
            class_map={"car": "car", "truck": "truck"},
            splits={"valid": "train", "test": "test"},
            labelled=frozenset({"car", "truck"}),
        ),
    )
}

for _s in REAL_SETS.values():
    assert set(_s.class_map.values()) <= set(CLASSES), _s.name
