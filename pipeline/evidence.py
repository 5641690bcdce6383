"""Evidence bundles: turn a violation event into write-once stored files and a hashed manifest.

Under `evidence/<point>/<yyyy>/<mm>/<dd>/<event_id>/` (the date is the event's UTC start date):
`clip.mp4` (pre-roll to post-roll, H.264), `original/<label>.jpg` (each key frame's JPEG exactly as
captured), `annotated/<label>.jpg` (a separate copy with the zone and boxes drawn; legal requirement 5
keeps it apart from the original), `plate.jpg` (the licence plate as it was read, when one was) and
`manifest.json` (who, where, when, what, which model, and the
size and SHA-256 of every file). The manifest is written last, so its presence marks a complete
bundle; building the same event again returns the stored bundle unchanged.

>>> builder = EvidenceBuilder(store, {"name": "yolo11n", "version": "1", "sha256": "ab" * 32},
...                           {"conf": 0.35})  # doctest: +SKIP
>>> bundle = builder.build(event, point, clip_frames, fps=5.0)  # doctest: +SKIP
>>> sorted(bundle.keys)  # doctest: +SKIP
['annotated/first_seen', 'clip', 'manifest', 'original/first_seen']
>>> case, created = case_service.open_case(bundle.to_new_case(event, point))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import cv2
import numpy as np

from cases.manifest import FileEntry, iso_ms, parse_manifest, read_files, sha256_hex
from cases.records import NewCase
from cases.spool import SpoolingStore
from cases.store import ObjectExistsError, ObjectNotFoundError, ObjectStore, StoreUnavailableError, validate_key
from cases.timeline import check_times
from feixian.domain import Point, Zone
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.frames import Frame, decode_jpeg, encode_jpeg
from pipeline.taxonomy import SUBTYPE_LABELS
from pipeline.video import encode_mp4

MANIFEST_SCHEMA = "feixian.evidence/1"
REQUIRED_MODEL_INFO = ("name", "version", "sha256")

_ZONE_COLOUR = (0, 215, 255)  # BGR amber
_BOX_COLOUR = (0, 0, 255)  # BGR red


@dataclass(frozen=True)
class EvidenceBundle:
    """Where an event's evidence is stored: name -> key (`clip`, `original/<label>`,
    `annotated/<label>`, `manifest`) and the manifest's key and SHA-256."""

    keys: dict[str, str]
    manifest_key: str
    manifest_sha256: str
    pending: bool = False  # some file still waits in the spool for the object store (cases.spool)

    def to_new_case(self, event: ViolationEvent, point: Point) -> NewCase:
        """The record `cases.service.CaseService.open_case` takes for this event."""
        return NewCase(
            event_id=event.event_id,
            point_id=point.id,
            device_id=point.device_id,
            category=event.category.value,
            subtype=event.subtype,
            zone_id=event.zone_id,
            started_at=event.started_at,
            triggered_at=event.triggered_at,
            ended_at=event.ended_at,
            party=event.plate,
            gps=point.gps,
            confidence=event.confidence,
            evidence=dict(self.keys),
            manifest_key=self.manifest_key,
            manifest_sha256=self.manifest_sha256,
            evidence_pending=self.pending,
        )

    @classmethod
    def from_manifest(cls, manifest_key: str, raw: bytes, store: ObjectStore) -> EvidenceBundle:
        keys = {name: entry.key for name, entry in read_files(parse_manifest(raw)).items()}
        keys["manifest"] = manifest_key
        pending = isinstance(store, SpoolingStore) and store.spooled(keys.values())
        return cls(keys, manifest_key, sha256_hex(raw), pending)


def event_prefix(event: ViolationEvent) -> str:
    """The folder of an event's evidence; derived from the event id's inputs, so replays find it."""
    day = event.started_at.astimezone(UTC)
    return f"evidence/{event.point_id}/{day:%Y/%m/%d}/{event.event_id}"


class EvidenceBuilder:
    """Builds and stores evidence bundles (see the module docstring for the layout)."""

    def __init__(self, store: ObjectStore, model_info: Mapping[str, Any], thresholds: Mapping[str, Any]):
        missing = [k for k in REQUIRED_MODEL_INFO if not model_info.get(k)]
        if missing:
            raise ValueError(f"model_info lacks {missing}; the manifest must name the model that detected")
        self.store = store
        self.model_info = dict(model_info)
        self.thresholds = dict(thresholds)

    def build(self, event: ViolationEvent, point: Point, clip_frames: Sequence[Frame], fps: float) -> EvidenceBundle:
        """Store the event's evidence (or find it stored by an earlier build) and return the bundle."""
        prefix = event_prefix(event)
        manifest_key = f"{prefix}/manifest.json"
        try:
            return EvidenceBundle.from_manifest(manifest_key, self.store.get(manifest_key), self.store)
        except (ObjectNotFoundError, StoreUnavailableError):
            pass  # unavailable: built again into the spool; its upload settles a copy the store already has
        zone = _check_inputs(event, point, clip_frames, fps)

        files = {"clip": self._put(f"{prefix}/clip.mp4", "video/mp4", lambda: _encode_clip(clip_frames, fps))}
        for kf in event.keyframes:
            files[f"original/{kf.label}"] = self._put(
                f"{prefix}/original/{kf.label}.jpg", "image/jpeg", lambda kf=kf: kf.frame.jpeg
            )
            files[f"annotated/{kf.label}"] = self._put(
                f"{prefix}/annotated/{kf.label}.jpg", "image/jpeg", lambda kf=kf: _annotate(kf, zone, point)
            )
        if event.plate_crop is not None:
            files["plate"] = self._put(f"{prefix}/plate.jpg", "image/jpeg", lambda: event.plate_crop)

        manifest = self._manifest(event, point, zone, clip_frames, fps, files)
        raw = _to_json(manifest)
        try:
            self.store.put(manifest_key, raw, "application/json")
        except ObjectExistsError:
            # Another builder finished the same event first; its manifest is the record.
            raw = self.store.get(manifest_key)
        return EvidenceBundle.from_manifest(manifest_key, raw, self.store)

    def _put(self, key: str, content_type: str, make: Callable[[], bytes]) -> FileEntry:
        """Store the bytes `make` returns under `key`, unless an earlier, interrupted build already
        stored them: the store is write-once, so the stored object is the evidence and the manifest
        must describe it."""
        if not _known_stored(self.store, key):
            data = make()
            try:
                self.store.put(key, data, content_type)
                return FileEntry.of(key, data)
            except ObjectExistsError:
                pass
        return FileEntry.of(key, self.store.get(key))

    def _manifest(
        self,
        event: ViolationEvent,
        point: Point,
        zone: Zone,
        clip_frames: Sequence[Frame],
        fps: float,
        files: dict[str, FileEntry],
    ) -> dict[str, Any]:
        first, last = clip_frames[0].captured_at, clip_frames[-1].captured_at
        return {
            "schema": MANIFEST_SCHEMA,
            "event_id": event.event_id,
            "point": {
                "id": point.id,
                "name": point.name,
                "town": point.town,
                "device_id": point.device_id,
                "gps": {"lat": point.gps[0], "lon": point.gps[1]},
            },
            "category": event.category.value,
            "subtype": event.subtype,
            "subtype_label": SUBTYPE_LABELS.get(event.subtype, {}),
            "zone": {"id": zone.id, "kind": zone.kind.value, "polygon": [list(p) for p in zone.polygon]},
            "times": {
                "started_at": iso_ms(event.started_at),
                "triggered_at": iso_ms(event.triggered_at),
                "ended_at": iso_ms(event.ended_at) if event.ended_at else None,
            },
            "party": {"plate": event.plate},
            "model": self.model_info,
            "thresholds": self.thresholds,
            "confidence": event.confidence,
            "objects": [_object_json(o) for o in event.objects],
            "keyframes": [
                {
                    "label": kf.label,
                    "seq": kf.frame.seq,
                    "captured_at": iso_ms(kf.frame.captured_at),
                    "objects": [_object_json(o) for o in kf.objects],
                }
                for kf in event.keyframes
            ],
            "rule": event.details,
            "clip": {
                "frames": len(clip_frames),
                "fps": fps,
                "first_frame_at": iso_ms(first),
                "last_frame_at": iso_ms(last),
                "duration_s": round((last - first).total_seconds(), 3),
            },
            "files": {name: entry.to_json() for name, entry in files.items()},
        }


def _known_stored(store: ObjectStore, key: str) -> bool:
    try:
        return store.exists(key)
    except StoreUnavailableError:
        return False  # the put spools it (cases.spool)


def _check_inputs(event: ViolationEvent, point: Point, clip_frames: Sequence[Frame], fps: float) -> Zone:
    """Refuse inputs that would make misleading evidence; return the event's zone."""
    if event.point_id != point.id:
        raise ValueError(f"event of point {event.point_id} given point {point.id}")
    zone = next((z for z in point.zones if z.id == event.zone_id), None)
    if zone is None:
        raise ValueError(f"zone {event.zone_id!r} is not defined at point {point.id}")
    if not clip_frames:
        raise ValueError(f"event {event.event_id}: no clip frames")
    if not fps > 0:
        raise ValueError(f"clip fps must be positive, got {fps}")
    foreign = {f.point_id for f in clip_frames} | {kf.frame.point_id for kf in event.keyframes}
    if foreign - {point.id}:
        raise ValueError(f"frames of other points in the evidence of {point.id}: {sorted(foreign - {point.id})}")
    if not event.keyframes:
        raise ValueError(f"event {event.event_id}: no key frames")
    labels = [kf.label for kf in event.keyframes]
    if len(labels) != len(set(labels)):
        raise ValueError(f"event {event.event_id}: duplicate key frame labels {labels}")
    for label in labels:
        validate_key(label)  # labels name files; a bad one must fail before the clip is stored
    keyframe_times = [kf.frame.captured_at for kf in event.keyframes]
    check_times(event.started_at, event.triggered_at, event.ended_at, keyframe_times, what=f"event {event.event_id}")
    _to_json(event.details)  # fail before any file is stored, not at the manifest
    return zone


def _encode_clip(frames: Sequence[Frame], fps: float) -> bytes:
    # decode_jpeg rather than Frame.image(): the frames still sit in the worker's ring buffer, which
    # keeps JPEGs only, and caching every decoded clip frame there would multiply its memory.
    return encode_mp4((_even(decode_jpeg(f.jpeg)) for f in frames), fps)


def _even(image: np.ndarray) -> np.ndarray:
    """Pad odd sizes by one black row/column (H.264 yuv420p needs even sizes); no pixel is lost."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def _annotate(kf: KeyFrame, zone: Zone, point: Point) -> bytes:
    image = decode_jpeg(kf.frame.jpeg)
    scale = max(1.0, image.shape[1] / 640)  # drawn sizes follow the frame width (640 px = 1)
    line = max(2, round(2 * scale))  # 1-px colour lines blur away in JPEG chroma subsampling
    polygon = np.round(np.array(zone.polygon)).astype(np.int32)
    cv2.polylines(image, [polygon], isClosed=True, color=_ZONE_COLOUR, thickness=line)
    for obj in kf.objects:
        x1, y1, x2, y2 = (round(v) for v in obj.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), _BOX_COLOUR, line)
        label = f"{obj.class_name} {obj.confidence:.2f}" + (f" #{obj.track_id}" if obj.track_id is not None else "")
        _text(image, label, (x1, max(10, y1 - 4)), scale, _BOX_COLOUR)
    _text(image, f"{point.id} {iso_ms(kf.frame.captured_at)}", (4, image.shape[0] - 6), scale, (255, 255, 255))
    return encode_jpeg(image)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    font, size, weight = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, max(1, round(scale))
    # A dark outline keeps the label readable on any background.
    cv2.putText(image, text, origin, font, size, (0, 0, 0), weight + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, font, size, colour, weight, cv2.LINE_AA)


def _object_json(obj: ObjectSeen) -> dict[str, Any]:
    return {
        "box": [round(float(v), 2) for v in obj.box],
        "class": obj.class_name,
        "confidence": round(float(obj.confidence), 4),
        "track_id": obj.track_id,
    }


def _to_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    """Rule details may carry numpy scalars and arrays, and times."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"rule detail of type {type(value).__name__} cannot go into the evidence manifest")
