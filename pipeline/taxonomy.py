"""The classes feixian's detector speaks and how they map onto violation categories and subtypes.

The shipped model is trained on exactly `CLASSES` (in this order); a foreign model (a COCO export, a
bureau's own) is mapped onto these names through `model.class_map` in the settings.

>>> occupation_subtype("chair"), vehicle_subtype("truck_dirty")
('shopfront', 'dirty')
"""

from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "person",
    "car",
    "truck",
    "truck_dirty",
    "truck_uncovered",
    "stall",
    "cart",
    "goods",
    "table",
    "chair",
    "umbrella",
)

# Occupation subtypes (Shanghai 市容环境卫生管理条例 art.25, 27; bureau practice):
#   stall     占道设摊 / 流动摊贩  stalls and vendor carts
#   shopfront 出店经营            tables, chairs, umbrellas put out in front of a shop
#   goods     乱堆物料            piled goods and boxes
OCCUPATION_CLASSES: dict[str, str] = {
    "stall": "stall",
    "cart": "stall",
    "table": "shopfront",
    "chair": "shopfront",
    "umbrella": "shopfront",
    "goods": "goods",
}

# Vehicle subtypes: dirty = 车容不洁 / 带泥上路, uncovered = 渣土车未密闭. A plain truck is the same
# physical object seen clean and covered; the tracker follows all three as one family.
TRUCK_CLASSES: dict[str, str | None] = {"truck": None, "truck_dirty": "dirty", "truck_uncovered": "uncovered"}

SUBTYPE_LABELS: dict[str, dict[str, str]] = {
    "stall": {"zh-CN": "占道设摊", "en": "Street stall"},
    "shopfront": {"zh-CN": "出店经营", "en": "Trading outside the shop"},
    "goods": {"zh-CN": "乱堆物料", "en": "Piled goods"},
    "dirty": {"zh-CN": "车容不洁", "en": "Dirty vehicle body"},
    "uncovered": {"zh-CN": "渣土车未密闭", "en": "Uncovered load"},
}

# The COCO detector in ../shared/models mapped onto feixian classes (truck stays a vehicle candidate;
# furniture and umbrellas become occupation items). COCO has no dirty/uncovered truck or stall classes.
COCO_CLASS_MAP: dict[str, str] = {
    "person": "person",
    "car": "car",
    "truck": "truck",
    "chair": "chair",
    "bench": "chair",
    "dining table": "table",
    "umbrella": "umbrella",
    "suitcase": "goods",
}


def occupation_subtype(class_name: str) -> str | None:
    return OCCUPATION_CLASSES.get(class_name)


def vehicle_subtype(class_name: str) -> str | None:
    return TRUCK_CLASSES.get(class_name)
