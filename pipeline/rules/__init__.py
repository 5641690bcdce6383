"""Violation rules: per point, fed each frame's tracked detections, emitting `ViolationEvent`s.

Both rules share one interface: `update(frame, detections) -> list[ViolationEvent]` per frame and
`flush(at) -> list[ViolationEvent]` at the end of a stream.
"""

from pipeline.rules.occupation import OccupationRule, OccupationRuleSettings
from pipeline.rules.vehicle import VehicleRule, VehicleRuleSettings

__all__ = ["OccupationRule", "OccupationRuleSettings", "VehicleRule", "VehicleRuleSettings"]
