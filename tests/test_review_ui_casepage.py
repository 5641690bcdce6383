"""How the case page groups evidence and finds the neighbouring cases in the queue."""

from __future__ import annotations

from datetime import UTC, datetime

from review_ui.casepage import EvidenceLayout, keyframe_times, neighbours

T0 = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)


def test_layout_pairs_key_frames_in_capture_order() -> None:
    evidence = {
        "manifest": "k/manifest.json",
        "original/best_2": "k/o2.jpg",
        "annotated/best_2": "k/a2.jpg",
        "original/best_1": "k/o1.jpg",
        "annotated/best_1": "k/a1.jpg",
        "annotated/orphan": "k/a3.jpg",
        "plate": "k/plate.jpg",
        "ocr.json": "k/ocr.json",
    }
    times = {"best_2": T0, "best_1": T0.replace(minute=31)}
    layout = EvidenceLayout.of(evidence, times)
    assert layout.clip is None
    assert [(k.label, k.original, k.annotated, k.captured_at) for k in layout.keyframes] == [
        ("best_2", "original/best_2", "annotated/best_2", T0),
        ("best_1", "original/best_1", "annotated/best_1", T0.replace(minute=31)),
        ("orphan", None, "annotated/orphan", None),
    ]
    # The plate crop is shown beside the party; anything unknown is still listed.
    assert layout.plate == "plate" and layout.others == ["ocr.json"]


def test_keyframe_times_skip_what_they_cannot_read() -> None:
    manifest = {
        "keyframes": [
            {"label": "first_seen", "captured_at": "2026-03-02T00:30:00.000Z"},
            {"label": "naive", "captured_at": "2026-03-02T00:30:00"},
            {"label": "garbled", "captured_at": "soon"},
            {"captured_at": "2026-03-02T00:30:00Z"},
            "not an object",
        ]
    }
    assert keyframe_times(manifest) == {"first_seen": T0}
    assert keyframe_times(None) == {} == keyframe_times({"keyframes": None})


def test_neighbours_follow_queue_order() -> None:
    queue = [7, 3, 12]  # oldest first by trigger time, not by id
    assert neighbours(queue, 7) == (None, 3)
    assert neighbours(queue, 3) == (7, 12)
    assert neighbours(queue, 12) == (3, None)
    # A case already decided leads back to the head of the queue.
    assert neighbours(queue, 5) == (None, 7)
    assert neighbours([], 5) == (None, None)
