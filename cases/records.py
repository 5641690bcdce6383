"""What the pipeline hands the case store to open a case (cases never import the pipeline).

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
>>> rec = NewCase("e1", "JDZ-001", "cam-1", "occupation", "stall", "front", t, t, None, None,
...               (31.38, 121.25), 0.8, {"manifest": "evidence/m.json"}, "evidence/m.json", "ab" * 32)
>>> rec.gps
(31.38, 121.25)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cases.timeline import check_times


@dataclass(frozen=True)
class NewCase:
    """One violation event with its stored evidence, ready to become a case in `detected`."""

    event_id: str
    point_id: str
    device_id: str
    category: str
    subtype: str
    zone_id: str
    started_at: datetime
    triggered_at: datetime
    ended_at: datetime | None
    party: str | None  # plate or shop; None when not identified
    gps: tuple[float, float]  # (latitude, longitude)
    confidence: float
    evidence: dict[str, str]  # name -> object key
    manifest_key: str
    manifest_sha256: str
    evidence_pending: bool = False  # some evidence file waits in the spool (cases.spool)

    def __post_init__(self) -> None:
        for name in ("started_at", "triggered_at", "ended_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"NewCase.{name} must be timezone-aware")
        check_times(self.started_at, self.triggered_at, self.ended_at, what=f"event {self.event_id}")
        if not self.manifest_key or len(self.manifest_sha256) != 64:
            raise ValueError("NewCase needs the evidence manifest's key and its SHA-256 (64 hex digits)")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"NewCase.confidence must be in [0, 1], got {self.confidence}")
