"""One case as it leaves the case store: `feixian cases list --json`, the evaluation's scoring (`feixian eval`,
`feixian tune-rules`) and any JSON answer about a case share `CaseOut`, so their fields cannot drift apart.

Times are ISO 8601 with their UTC offset, as `datetime.isoformat` writes them.

>>> from datetime import UTC, datetime
>>> from types import SimpleNamespace
>>> t = datetime(2026, 1, 2, 8, 30, tzinfo=UTC)
>>> case = SimpleNamespace(id=1, event_id="e1", state="detected", category="occupation", subtype="stall",
...     point_id="P1", zone_id="front", started_at=t, triggered_at=t, ended_at=None, detected_at=t, party=None,
...     confidence=0.9, evidence={"clip": "e/clip.mp4"}, manifest_key="e/manifest.json", manifest_sha256="ab",
...     evidence_pending=False)
>>> out = case_to_json(case)
>>> out["started_at"], out["ended_at"], out["evidence"]
('2026-01-02T08:30:00+00:00', None, {'clip': 'e/clip.mp4'})
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, field_validator

IsoTime = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str)]


class CaseOut(BaseModel):
    """What a case shows outside the store: state, category, subtype, point, party and evidence keys."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    event_id: str
    state: str
    category: str
    subtype: str
    point_id: str
    zone_id: str
    started_at: IsoTime
    triggered_at: IsoTime
    ended_at: IsoTime | None
    detected_at: IsoTime
    party: str | None
    confidence: float
    evidence: dict[str, str]
    manifest_key: str
    manifest_sha256: str
    evidence_pending: bool

    @field_validator("evidence", mode="before")
    @classmethod
    def _no_evidence_is_empty(cls, evidence: Any) -> Any:
        return evidence or {}


def case_to_json(case: Any) -> dict:
    """`CaseOut` of a stored case (any object with its attributes), as JSON-ready values."""
    return CaseOut.model_validate(case, from_attributes=True).model_dump(mode="json")
