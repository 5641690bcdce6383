"""What the case page shows, worked out from a case's evidence map and the queue around it.

>>> ev = EvidenceLayout.of({"clip": "e/clip.mp4", "manifest": "e/m.json", "original/best_1": "e/o.jpg",
...                         "annotated/best_1": "e/a.jpg", "plate": "e/p.jpg"}, {})
>>> ev.clip, [(k.label, k.original, k.annotated) for k in ev.keyframes], ev.plate, ev.others
('clip', [('best_1', 'original/best_1', 'annotated/best_1')], 'plate', [])
>>> neighbours([4, 9, 7], 9), neighbours([4, 9, 7], 5)
((4, 7), (None, 4))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


def neighbours(queue: Sequence[int], current: int) -> tuple[int | None, int | None]:
    """The cases before and after `current` in the queue (ids in queue order). A case no longer in
    the queue (already decided) leads on to the head of the queue.

    The decision route asks before it moves the case, so "next" is the case after it, not the head."""
    if current not in queue:
        return None, (queue[0] if queue else None)
    i = queue.index(current)
    return (queue[i - 1] if i > 0 else None), (queue[i + 1] if i + 1 < len(queue) else None)
