"""How the violation rules judge what the detector sees: the `rules:` section of the settings file.

The best values depend on the detector (how steadily it boxes an item, how often it calls a clean truck
uncovered), so a deployment that changes its model re-tunes them (`feixian tune-rules`) and keeps them
beside the model path. The defaults are a starting point; the settings file holds the values its model
needs.

Example:
    >>> RuleSettings.model_validate({"vehicle": {"min_share": 0.6}}).vehicle.min_share
    0.6
    >>> RuleSettings().occupation.cooldown_s
    20.0
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OccupationRuleSettings(BaseModel):
    """How the occupation rule tells a standing item from a passing one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stationary_iou: float = Field(
        default=0.5,
        ge=0.1,
        le=0.95,
        description="An item has not moved while its box overlaps the box where it was first seen by at "
        "least this IoU; below it, it moved and its dwell timer starts again.",
    )
    max_unseen_s: float = Field(
        default=15.0,
        ge=0,
        le=600,
        description="An item unseen this long (hidden by passers-by, missed by the detector) loses its timer.",
    )
    confirm_frames: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Confident sightings an item needs before weaker boxes (down to the model's "
        "track_threshold) may continue it, and before a vehicle passing in front of it hides it rather "
        "than taking it away.",
    )
    young_unseen_s: float = Field(
        default=3.0,
        ge=0,
        le=600,
        description="An item that has only just appeared may go unseen this long (a passer-by, detector "
        "flicker); the allowance then grows by the time it has stood, up to max_unseen_s. An item unseen "
        "longer than this is lost: only a box of the subtype it was mostly called brings it back.",
    )
    min_seen_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the frames since an item appeared in which it must have been detected, "
        "so a sporadic false positive cannot accumulate dwell time.",
    )
    cooldown_s: float = Field(
        default=20.0,
        ge=0,
        le=3600,
        description="After an event, the zone must hold no item of that subtype this long before a new "
        "episode (and event) may start.",
    )
    part_of_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A box of another subtype that comes into view in the same frame as a larger item, with "
        "at least this share of its own area inside that item's box, is part of the item whenever it is "
        "seen there (a crate of a pile the detector also boxes as a chair), never an item itself.",
    )
    hidden_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A confirmed item goes unseen hidden, not gone, while at least this share of its box lies "
        "inside the box of a car or truck: that time neither counts against it nor towards its seen "
        "fraction, up to max_unseen_s.",
    )
    relabelled_joins: bool = Field(
        default=False,
        description="A candidate that comes due where an already reported item still stands (their boxes "
        "overlap by stationary_iou, the reported one seen within its unseen allowance) is that item under "
        "another name (the detector flipped a pile of goods to stall) and joins its episode instead of "
        "raising a second event. Off: it is a new item, so a pile of goods put down under a reported table "
        "raises its own event.",
    )

    date_revealed: bool = Field(
        default=True,
        description="Date an item first named where another followed item stands (crates behind a stool, "
        "boxed with it as one chair until the stool leaves) from when its box's pixels took their present "
        "look, rather than from when the detector named it; the rule then keeps a thumbnail history of "
        "each point's view (pipeline/stillness.py). Off: every item is dated from its first detection.",
    )
    behind_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="For date_revealed: an item first named where followed items cover at least this share "
        "of its box may have stood behind them, and is dated from its pixels.",
    )
    revealed_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="For date_revealed: an item revealed behind another is dated from when this share of its "
        "box's pixels had taken their present look (and only if at least this share changed after the item "
        "in front appeared).",
    )
    pixel_tolerance: int = Field(
        default=24,
        ge=1,
        le=254,
        description="For date_revealed: a pixel has changed its look when a colour channel (0-255) of the "
        "reduced view differs by more than this (above codec noise, below a crate against a wall).",
    )
    pixel_settle_s: float = Field(
        default=3.0,
        ge=0,
        le=60,
        description="For date_revealed: a new look must hold this long to count (a passer-by crossing an "
        "item does not change its look; the change is dated from its first frame once it has held).",
    )

    @model_validator(mode="after")
    def _cooldown_covers_occlusion(self) -> OccupationRuleSettings:
        # A zone whose item is merely hidden is not clear; a shorter cooldown would re-report the same item.
        if self.cooldown_s < self.max_unseen_s:
            raise ValueError("cooldown_s must be at least max_unseen_s")
        if self.young_unseen_s > self.max_unseen_s:
            raise ValueError("young_unseen_s must not exceed max_unseen_s")
        return self


class VehicleRuleSettings(BaseModel):
    """How the vehicle rule delimits and judges a truck passage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_frames: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="A passage seen whole (clear of the frame border) in this many frames in the zone is "
        "judged on those frames (8 = 1.6 s at 5 fps); fewer are a glimpse, no evidence (a clean truck "
        "glimpsed whole for a second can look uncovered).",
    )
    min_share: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="Confidence-weighted share of the passage's frames that must show the truck dirty "
        "(or uncovered) for an event.",
    )
    min_cut_frames: int | None = Field(
        default=20,
        ge=1,
        le=1000,
        description="A truck never seen whole in min_frames frames (too close to the camera to fit in the "
        "frame) is judged on its cut-off views when it shows in at least this many (20 = 4 s at 5 fps: "
        "a part of a body is weaker evidence than the whole, so it takes a longer look); null: never judged. "
        "A truck seen whole enough is judged on its whole views only: half a clean body can look uncovered "
        "from above or dirty in shadow.",
    )
    lost_after_s: float = Field(
        default=2.0, gt=0, le=60, description="A truck unseen in the zone this long has passed: judge it."
    )
    merge_within_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="A new track starting where an open passage's truck is (seen in the same frame) or would "
        "be (missing for at most this long, moved on at its last speed) is that truck: a new tracker id, "
        "or a second box on it.",
    )
    merge_iou: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Minimum IoU between the new track's box and the open passage's truck box (moved on at "
        "its last speed if missing), for the two to be merged. Two trucks overlapping this much in view "
        "are judged as one passage.",
    )
    merge_overlap: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Or: minimum share of the smaller of the two boxes that lies inside the other. A truck "
        "too long to fit in the frame is boxed in overlapping parts (cab, body, whole) whose IoU can be "
        "low; a part is mostly inside the whole or half over its neighbour. Two trucks overlapping this "
        "much in view are judged as one passage.",
    )

    @model_validator(mode="after")
    def _merge_before_judging(self) -> VehicleRuleSettings:
        # Only a passage that is still open can take over a new track id.
        if self.merge_within_s >= self.lost_after_s:
            raise ValueError("merge_within_s must be shorter than lost_after_s")
        return self


class RuleSettings(BaseModel):
    """Both rules' settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    occupation: OccupationRuleSettings = Field(default_factory=OccupationRuleSettings)
    vehicle: VehicleRuleSettings = Field(default_factory=VehicleRuleSettings)
