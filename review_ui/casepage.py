"""What the case page shows, worked out from a case's evidence map and the queue around it.

>>> ev = EvidenceLayout.of({"clip": "e/clip.mp4", "manifest": "e/m.json", "original/best_1": "e/o.jpg",
...                         "annotated/best_1": "e/a.jpg", "plate": "e/p.jpg"}, {})
>>> ev.clip, [(k.label, k.original, k.annotated) for k in ev.keyframes], ev.plate, ev.others
('clip', [('best_1', 'original/best_1', 'annotated/best_1')], 'plate', [])
>>> neighbours([4, 9, 7], 9), neighbours([4, 9, 7], 5)
((4, 7), (None, 4))
>>> from types import SimpleNamespace
>>> [z.points for z in zone_overlay([SimpleNamespace(id="front", kind="no_occupation",
...                                  polygon=[(0, 0), (320, 0), (160, 120)])], (320, 240), "front").zones]
['0,0 100,0 50,50']
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image, UnidentifiedImageError

from review_ui.services import ZoneOutline

CLIP = "clip"
MANIFEST = "manifest"
PLATE = "plate"
_ORIGINAL = "original/"
_ANNOTATED = "annotated/"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class KeyFramePair:
    """One key frame: its original (evidence) and annotated (boxes drawn) evidence names."""

    label: str
    original: str | None
    annotated: str | None
    captured_at: datetime | None


@dataclass(frozen=True)
class EvidenceLayout:
    """The case's evidence names grouped for display: the clip, key frames by label, the plate as it
    was read, the rest."""

    clip: str | None
    keyframes: list[KeyFramePair]
    others: list[str]
    plate: str | None = None

    @classmethod
    def of(cls, evidence: Mapping[str, str], times: Mapping[str, datetime]) -> EvidenceLayout:
        """`times` are the key frames' capture times by label (`keyframe_times`); frames are shown in
        capture order, those without a known time last."""
        labels = {n.removeprefix(p) for n in evidence for p in (_ORIGINAL, _ANNOTATED) if n.startswith(p)}
        pairs = [
            KeyFramePair(
                label,
                _ORIGINAL + label if _ORIGINAL + label in evidence else None,
                _ANNOTATED + label if _ANNOTATED + label in evidence else None,
                times.get(label),
            )
            for label in sorted(labels, key=lambda lb: (lb not in times, times.get(lb, _EPOCH), lb))
        ]
        grouped = {CLIP, MANIFEST, PLATE} | {n for n in evidence if n.startswith((_ORIGINAL, _ANNOTATED))}
        return cls(
            clip=CLIP if CLIP in evidence else None,
            keyframes=pairs,
            others=sorted(n for n in evidence if n not in grouped),
            plate=PLATE if PLATE in evidence else None,
        )


def keyframe_times(manifest: Mapping[str, Any] | None) -> dict[str, datetime]:
    """Capture time by key-frame label from an evidence manifest; entries it cannot read are left out
    (the page then shows the frame without a time rather than failing).

    >>> keyframe_times({"keyframes": [{"label": "first_seen", "captured_at": "2026-03-02T00:30:00.000Z"}]})
    {'first_seen': datetime.datetime(2026, 3, 2, 0, 30, tzinfo=datetime.timezone.utc)}
    """
    times = {}
    for entry in (manifest or {}).get("keyframes") or []:
        try:
            at = datetime.fromisoformat(entry["captured_at"])
        except (TypeError, KeyError, ValueError):
            continue
        if at.tzinfo is not None and isinstance(entry.get("label"), str):
            times[entry["label"]] = at
    return times


def clip_fps(manifest: Mapping[str, Any] | None) -> float | None:
    """The clip's frame rate as the evidence manifest records it (the frame step's size); None when unknown.

    >>> clip_fps({"clip": {"fps": 5.0}}), clip_fps({"clip": {"fps": "x"}}), clip_fps(None)
    (5.0, None, None)
    """
    fps = ((manifest or {}).get("clip") or {}).get("fps")
    return float(fps) if isinstance(fps, int | float) and fps > 0 else None


def neighbours(queue: Sequence[int], current: int) -> tuple[int | None, int | None]:
    """The cases before and after `current` in the queue (ids in queue order). A case no longer in
    the queue (already decided) leads on to the head of the queue.

    The decision route asks before it moves the case, so "next" is the case after it, not the head."""
    if current not in queue:
        return None, (queue[0] if queue else None)
    i = queue.index(current)
    return (queue[i - 1] if i > 0 else None), (queue[i + 1] if i + 1 < len(queue) else None)


@dataclass(frozen=True)
class ZoneShape:
    """One zone of the point as the case page draws it over the frame: `points` are an SVG polygon's, in percent of
    the frame's width and height (the overlay stretches over whatever size the frame is shown at)."""

    id: str
    kind: str
    points: str
    of_case: bool  # the zone the case was raised in


@dataclass(frozen=True)
class ZoneOverlay:
    """The zones over a frame of `width` x `height` pixels: the page letterboxes the overlay as the clip is
    letterboxed, then stretches the zones' percentages over the frame."""

    width: int
    height: int
    zones: list[ZoneShape]


def zone_overlay(zones: Sequence[ZoneOutline], frame: tuple[int, int], case_zone: str) -> ZoneOverlay:
    """The zones (vertices in the camera frame's pixels) scaled to a frame `frame` = (width, height) pixels."""
    width, height = frame

    def scaled(v: float, size: int) -> str:
        return f"{100 * v / size:.2f}".rstrip("0").rstrip(".")

    shapes = [
        ZoneShape(
            z.id,
            str(z.kind),
            " ".join(f"{scaled(x, width)},{scaled(y, height)}" for x, y in z.polygon),
            z.id == case_zone,
        )
        for z in zones
    ]
    return ZoneOverlay(width, height, shapes)


def frame_size(image: bytes) -> tuple[int, int] | None:
    """(width, height) of an image from its header alone; None when it is not one."""
    try:
        with Image.open(io.BytesIO(image)) as img:
            return img.size
    except (UnidentifiedImageError, OSError):
        return None
