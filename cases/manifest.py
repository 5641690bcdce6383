"""The part of an evidence manifest the case store relies on: which files it lists and their hashes.

The evidence builder (`pipeline.evidence`) writes the whole manifest; `cases.verify` re-checks the
files through these entries, so both sides share one definition.

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
from typing import Any

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """A manifest is not valid JSON or lacks the file list."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
