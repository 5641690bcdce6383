"""`feixian publicity export`'s work: the 双公示 records of `cases.publicity` with each case's key frames, read from
the evidence store (each read logged, legal requirement 5), blurred (`cases.redact`) and written beside them.

The originals are read, never the annotated copies (their drawn labels could carry a plate). The regions blurred
are those of the key frame's recorded persons and vehicles, plus those `find_objects` reports in the image when
given (the CLI passes the deployed detector, so people the evidence did not record are blurred as well).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from cases.publicity import Decided, ExportResult, PublicitySettings, image_name, record, remove_images, select_cases
from cases.redact import blur, regions_to_blur
from cases.store import ObjectNotFoundError, ObjectStore

EXPORT_ACTOR = "publicity-export"
FindObjects = Callable[[np.ndarray], list[dict[str, Any]]]


@dataclass(frozen=True)
class PublicityExporter:
    """Writes the export to a folder (see the module docstring); `log_access(user, key, case_id)` records each read."""

    sessions: sessionmaker[Session]
    store: ObjectStore
    settings: PublicitySettings
    tz: ZoneInfo
    log_access: Callable[[str, str, int], None]
    find_objects: FindObjects | None = None

    def export(self, out: Path) -> ExportResult:
        with self.sessions() as s:
            publish, withdrawn = select_cases(s)
        images = out / "images"
        images.mkdir(parents=True, exist_ok=True)
        remove_images(images, [d.case.id for d in withdrawn])
        result = ExportResult()
        for decided in publish:
            manifest = self._read_json(decided, decided.case.manifest_key)
            rec = record(decided, manifest, self.settings, self.tz)
            for label, objects in _keyframes(manifest):
                name = self._image(decided, label, objects, images, result)
                rec["images"] += [f"images/{name}"] if name else []
            result.published.append(rec)
        for d in withdrawn:
            local: datetime = d.at.astimezone(self.tz)
            no = self.settings.decision_no(d.case.id, local.year)
            result.withdrawn.append({"decision_no": no, "withdrawn_on": local.date().isoformat()})
        return result

    def _read(self, decided: Decided, key: str) -> bytes:
        data = self.store.get(key)
        self.log_access(EXPORT_ACTOR, key, decided.case.id)
        return data

    def _read_json(self, decided: Decided, key: str) -> dict[str, Any]:
        return json.loads(self._read(decided, key))

    def _image(self, decided: Decided, label: str, objects: list, folder: Path, result: ExportResult) -> str | None:
        key = decided.case.evidence.get(f"original/{label}")
        if key is None:
            return None
        try:
            image = cv2.imdecode(np.frombuffer(self._read(decided, key), np.uint8), cv2.IMREAD_COLOR)
        except ObjectNotFoundError:
            return None
        if image is None:
            return None  # not an image: nothing to publish, rather than an unblurred guess
        found = self.find_objects(image) if self.find_objects else []
        regions = regions_to_blur([*objects, *found], image.shape, self.settings.blur)
        name = image_name(decided.case.id, label)
        ok, jpeg = cv2.imencode(".jpg", blur(image, regions, self.settings.blur), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return None
        (folder / name).write_bytes(jpeg.tobytes())
        result.blurred[f"images/{name}"] = regions
        return name


def _keyframes(manifest: dict[str, Any]) -> list[tuple[str, list]]:
    return [(kf["label"], kf.get("objects", [])) for kf in manifest.get("keyframes", []) if kf.get("label")]
