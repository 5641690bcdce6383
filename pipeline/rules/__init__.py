"""Violation rules: per point, fed each frame's tracked detections, emitting `ViolationEvent`s.

Both rules share one interface: `update(frame, detections) -> list[ViolationEvent]` per frame and
`flush(at) -> list[ViolationEvent]` at the end of a stream.
"""

from feixian.domain import Category, Point
from feixian.rule_settings import OccupationRuleSettings, RuleSettings, VehicleRuleSettings
from pipeline.rules.occupation import OccupationRule
from pipeline.rules.vehicle import VehicleRule
from pipeline.stillness import StillnessMap

__all__ = [
    "OccupationRule",
    "OccupationRuleSettings",
    "VehicleRule",
    "VehicleRuleSettings",
    "build_rules",
]


def build_rules(
    point: Point, settings: RuleSettings, start_confidence: float, plate_views: int = 0
) -> list[OccupationRule | VehicleRule]:
    """The rules for the categories enabled at `point`.

    `start_confidence`: the model's conf_threshold (weaker boxes only continue what was found);
    `plate_views`: frames per truck passage kept for the plate reader (0: no reader).
    """
    rules: list[OccupationRule | VehicleRule] = []
    if Category.OCCUPATION in point.categories:
        occ = settings.occupation
        stillness = StillnessMap(occ.pixel_tolerance, occ.pixel_settle_s) if occ.date_revealed else None
        rules.append(OccupationRule(point, occ, start_confidence=start_confidence, stillness=stillness))
    if Category.VEHICLE in point.categories:
        rules.append(VehicleRule(point, settings.vehicle, start_confidence=start_confidence, plate_views=plate_views))
    return rules
