"""The part of an evidence manifest the case store relies on: which files it lists and their hashes,
and the facts of the case it was built for.

The evidence builder (`pipeline.evidence`) writes the whole manifest; `cases.verify` re-checks the
files through these entries and the case row against `ManifestFacts`, so both sides share one definition.

>>> entry = FileEntry.of("evidence/P1/clip.mp4", b"abc")
>>> entry.size, entry.sha256[:12]
(3, 'ba7816bf8f01')
>>> read_files({"event_id": "e1", "files": {"clip": entry.to_json()}})["clip"] == entry
True
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest is not valid JSON or lacks the file list."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso_ms(at: datetime) -> str:
    """A time as the manifest writes it: UTC, milliseconds, `Z`.

    >>> from datetime import timedelta, timezone
    >>> iso_ms(datetime(2026, 3, 4, 18, 2, 30, 200999, tzinfo=timezone(timedelta(hours=8))))
    '2026-03-04T10:02:30.200Z'
    """
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FileEntry:
    """One stored evidence file as the manifest records it."""

    key: str
    size: int
    sha256: str

    @classmethod
    def of(cls, key: str, data: bytes) -> FileEntry:
        return cls(key, len(data), sha256_hex(data))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "sha256": self.sha256}


def parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"manifest is not UTF-8 JSON: {e}") from e
    if not isinstance(manifest, dict):
        raise ManifestError("manifest is not a JSON object")
    return manifest


def read_files(manifest: dict[str, Any]) -> dict[str, FileEntry]:
    """The manifest's `files` section: name -> entry; raises `ManifestError` if malformed."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ManifestError("manifest has no 'files' object")
    entries = {}
    for name, raw in files.items():
        try:
            entry = FileEntry(str(raw["key"]), int(raw["size"]), str(raw["sha256"]))
        except (TypeError, KeyError, ValueError) as e:
            raise ManifestError(f"manifest file entry {name!r} is malformed: {e!r}") from e
        if not _SHA256_RE.fullmatch(entry.sha256):
            raise ManifestError(f"manifest file entry {name!r} has no SHA-256 hex digest")
        entries[name] = entry
    return entries


class _Facts(BaseModel):
    # Only the fields read here are declared; the builder writes many more (model, rule, objects...).
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Gps(_Facts):
    lat: float
    lon: float


class _Point(_Facts):
    id: str
    device_id: str
    gps: _Gps


class _Zone(_Facts):
    id: str


class _Times(_Facts):
    started_at: AwareDatetime
    triggered_at: AwareDatetime
    ended_at: AwareDatetime | None


class _Party(_Facts):
    plate: str | None


class _KeyFrame(_Facts):
    label: str
    captured_at: AwareDatetime


class ManifestFacts(_Facts):
    """The facts of a case as its evidence manifest records them.

    >>> facts = ManifestFacts.of({"event_id": "e1", "point": {"id": "P1", "device_id": "cam",
    ...     "gps": {"lat": 31.0, "lon": 121.0}}, "category": "vehicle", "subtype": "dirty", "zone": {"id": "road"},
    ...     "times": {"started_at": "2026-03-04T10:02:30.200Z", "triggered_at": "2026-03-04T10:02:44.800Z",
    ...     "ended_at": "2026-03-04T10:02:44.800Z"}, "party": {"plate": None}, "confidence": 0.9, "keyframes": []})
    >>> facts.case_fields()["started_at"], facts.case_fields()["party"]
    ('2026-03-04T10:02:30.200Z', None)
    """

    event_id: str
    point: _Point
    category: str
    subtype: str
    zone: _Zone
    times: _Times
    party: _Party
    confidence: float
    keyframes: list[_KeyFrame]

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> ManifestFacts:
        """Raises `ManifestError` naming each missing or malformed fact."""
        try:
            return cls.model_validate(manifest)
        except ValidationError as e:
            wrong = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise ManifestError(f"manifest facts unreadable: {wrong}") from None

    def case_fields(self) -> dict[str, Any]:
        """The facts under the names of the case row's columns, times as `iso_ms` strings (the manifest
        keeps milliseconds)."""
        t = self.times
        return {
            "event_id": self.event_id,
            "point_id": self.point.id,
            "device_id": self.point.device_id,
            "gps_lat": self.point.gps.lat,
            "gps_lon": self.point.gps.lon,
            "category": self.category,
            "subtype": self.subtype,
            "zone_id": self.zone.id,
            "started_at": iso_ms(t.started_at),
            "triggered_at": iso_ms(t.triggered_at),
            "ended_at": iso_ms(t.ended_at) if t.ended_at else None,
            "party": self.party.plate,
            "confidence": self.confidence,
        }
