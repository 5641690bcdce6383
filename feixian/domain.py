"""The domain's words, shared by every layer: violation categories, zone kinds, the points registry's
records (point, zone, source, with the legal check on whether a point may raise cases) and the camera
gateways allowed to push frames. A leaf: it imports nothing of feixian's, so `ingest/`, `pipeline/`,
`cases/` and `review_ui/` can use it without reaching the settings loader (`feixian.config`) above them.

Example:
    >>> Zone(id="front", kind="no_occupation", polygon=[(0, 0), (10, 0), (10, 10)]).kind
    <ZoneKind.NO_OCCUPATION: 'no_occupation'>
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Category(StrEnum):
    """The two violation families on the published list of non-site matters."""

    OCCUPATION = "occupation"
    VEHICLE = "vehicle"


class ZoneKind(StrEnum):
    NO_OCCUPATION = "no_occupation"
    ROADWAY = "roadway"
    SITE_EXIT = "site_exit"


# Which zone kinds a category's rule looks at.
ZONE_KINDS_FOR = {
    Category.OCCUPATION: {ZoneKind.NO_OCCUPATION},
    Category.VEHICLE: {ZoneKind.ROADWAY, ZoneKind.SITE_EXIT},
}


class StrictModel(BaseModel):
    """A frozen model that refuses unknown keys: the records here and every section of the settings file."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(StrictModel):
    """A polygon in the point's pixel coordinates, tested at a box's bottom-centre."""

    id: str = Field(min_length=1, max_length=64, description="Zone id, unique within the point.")
    kind: ZoneKind = Field(description="no_occupation (shop front, sidewalk), roadway or site_exit.")
    polygon: list[tuple[float, float]] = Field(
        min_length=3, description="Vertices [x, y] in pixels of the camera frame."
    )

    @field_validator("polygon")
    @classmethod
    def _non_negative(cls, poly: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if any(x < 0 or y < 0 for x, y in poly):
            raise ValueError("polygon vertices must be non-negative pixel coordinates")
        return poly


class Source(StrictModel):
    """Where a point's frames come from."""

    kind: Literal["file", "rtsp", "push"] = Field(description="file (replay/demo), rtsp (pull) or push (HTTP API).")
    uri: str | None = Field(default=None, description="File path (relative to the points file) or RTSP URL.")
    detect_uri: str | None = Field(
        default=None,
        min_length=1,
        description="The camera's sub-stream (file path relative to the points file, or RTSP URL), where it "
        "offers one beside its main stream as NVRs do: the detector looks at it, evidence is cut from `uri`. "
        "Zones stay in the main stream's pixels. Not for push sources.",
    )
    loop: bool = Field(default=False, description="Files only: start again at the end (live demo).")
    start_time: datetime | None = Field(
        default=None,
        description="Files only: capture time of the first frame in replays, so they are reproducible; "
        "live runs and None stamp the moment the source starts.",
    )

    @model_validator(mode="after")
    def _uri_needed(self) -> Source:
        if self.kind != "push" and not self.uri:
            raise ValueError(f"a {self.kind} source needs a uri")
        if self.kind == "push" and self.detect_uri is not None:
            raise ValueError(
                "a push source has no detect_uri: its gateway pushes one stream; detect_uri is for file and rtsp "
                "sources"
            )
        return self


class Point(StrictModel):
    """One announced non-site enforcement camera point."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Point id, e.g. JDZ-001.")
    name: str = Field(min_length=1, description="Human name, usually the street and landmark.")
    town: str = Field(min_length=1, description="Town: 嘉定镇, 真新, 工业区 ...")
    device_id: str = Field(min_length=1, description="Camera device id recorded in evidence.")
    gps: tuple[Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]] = Field(
        description="[latitude, longitude] of the camera."
    )
    source: Source
    announced_on: date | None = Field(default=None, description="Public announcement date; None = not announced.")
    legal_review: bool = Field(default=False, description="Legal review of the point recorded.")
    technical_review: bool = Field(default=False, description="Technical review of the point recorded.")
    in_service: bool = Field(default=True, description="Camera in service.")
    calibration_valid_until: date | None = Field(default=None, description="End of calibration validity.")
    zones: list[Zone] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list, description="Categories enabled at this point.")
    dwell_seconds: float = Field(
        default=180.0, ge=5, le=3600, description="Occupation must be stationary this long (practice: 3-5 min)."
    )
    detect_fps: float = Field(default=5.0, gt=0, le=30, description="Frames per second sampled for detection.")

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, zones: list[Zone]) -> list[Zone]:
        ids = [z.id for z in zones]
        if len(ids) != len(set(ids)):
            raise ValueError(f"zone ids must be unique within a point: {ids}")
        return zones

    def may_raise_cases(self, category: Category, on: date) -> tuple[bool, str]:
        """Whether a detection here may become a case (legal requirements 1 and 2), with the reason.

        >>> p = Point(id="P1", name="n", town="t", device_id="d", gps=(31.0, 121.0),
        ...           source=Source(kind="push"), categories=[Category.OCCUPATION])
        >>> p.may_raise_cases(Category.OCCUPATION, date(2026, 1, 1))
        (False, 'point not announced')
        """
        if self.announced_on is None or self.announced_on > on:
            return False, "point not announced"
        if not (self.legal_review and self.technical_review):
            return False, "legal or technical review not recorded"
        if not self.in_service:
            return False, "point not in service"
        if self.calibration_valid_until is not None and self.calibration_valid_until < on:
            return False, "calibration expired"
        if category not in self.categories:
            return False, f"category {category.value} not enabled at this point"
        return True, "ok"


class Gateway(StrictModel):
    """A camera gateway allowed to push frames for some points."""

    id: str = Field(min_length=1)
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the bearer token.")
    points: list[str] = Field(min_length=1, description="Point ids this gateway may push for.")
    max_fps: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="Frames a second this gateway may push, over all its points (bursts of up to one second's "
        "worth); faster pushes are answered 429 with Retry-After. None = no limit.",
    )
