"""A case's times are consistent by construction: started ≤ triggered ≤ ended, key frames at distinct
times in order. The case record refuses anything else, and so does the evidence builder, before it
stores a byte."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cases import NewCase
from cases.db import make_engine, session_factory, upgrade
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.timeline import InconsistentTimesError
from feixian.domain import Category, Point, Source, Zone
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.evidence import EvidenceBuilder
from pipeline.frames import Frame, encode_jpeg

T0 = datetime(2026, 3, 4, 9, 59, 30, tzinfo=UTC)
S = timedelta(seconds=1)
POINT = Point(
    id="GYQ-001",
    name="n",
    town="t",
    device_id="cam",
    gps=(31.0, 121.0),
    source=Source(kind="push"),
    zones=[Zone(id="road", kind="roadway", polygon=[(0, 0), (64, 0), (64, 48), (0, 48)])],
)


def record(started: datetime, triggered: datetime, ended: datetime | None) -> NewCase:
    return NewCase(
        "ev-1", "GYQ-001", "cam", "vehicle", "dirty", "road", started, triggered, ended, None, (31.0, 121.0), 0.9,
        {"manifest": "evidence/m.json"}, "evidence/m.json", "ab" * 32,
    )  # fmt: skip


@pytest.mark.parametrize(
    "started, triggered, ended",
    [(T0, T0, None), (T0, T0, T0), (T0, T0 + 5 * S, None), (T0, T0 + 5 * S, T0 + 5 * S), (T0, T0 + 5 * S, T0 + 9 * S)],
)
def test_consistent_times_make_a_case(tmp_path, started, triggered, ended):
    url = f"sqlite:///{tmp_path / 'feixian.db'}"
    upgrade(url)
    case, created = CaseService(session_factory(make_engine(url))).open_case(record(started, triggered, ended))
    assert created and (case.started_at, case.triggered_at, case.ended_at) == (started, triggered, ended)


@pytest.mark.parametrize(
    "started, triggered, ended, why",
    [
        # The demo's road truck: ended at its last sighting, triggered 5 s later when the rule judged it.
        (T0, T0 + 7 * S, T0 + 2 * S, "ended_at .* is before triggered_at"),
        (T0, T0 - S, None, "triggered_at .* is before started_at"),
    ],
)
def test_contradicting_times_are_refused(started, triggered, ended, why):
    with pytest.raises(InconsistentTimesError, match=f"event ev-1: inconsistent times: {why}"):
        record(started, triggered, ended)
    ok = record(T0, T0, None)
    with pytest.raises(InconsistentTimesError):
        replace(ok, ended_at=T0 - S)


def frames(n: int) -> list[Frame]:
    image = encode_jpeg(np.full((48, 64, 3), 90, np.uint8))
    return [Frame(POINT.id, i, T0 + i * timedelta(seconds=0.2), image) for i in range(n)]


def truck_event(clip: list[Frame], first: int, second: int) -> ViolationEvent:
    truck = ObjectSeen((10.0, 10.0, 50.0, 40.0), "truck_dirty", 0.9, track_id=1)
    return ViolationEvent(
        point_id=POINT.id,
        category=Category.VEHICLE,
        subtype="dirty",
        zone_id="road",
        started_at=clip[0].captured_at,
        triggered_at=clip[-1].captured_at,
        ended_at=clip[-1].captured_at,
        objects=[truck],
        keyframes=[KeyFrame("best_1", clip[first], [truck]), KeyFrame("best_2", clip[second], [truck])],
    )


@pytest.mark.parametrize(
    "first, second, why",
    [(4, 4, r"key frame 2 is not after key frame 1 \(both "), (6, 4, "key frame 2 is not after key frame 1")],
)
def test_evidence_with_key_frames_at_one_time_or_out_of_order_is_refused(tmp_path, first, second, why):
    store = LocalObjectStore(tmp_path / "evidence")
    builder = EvidenceBuilder(store, {"name": "m", "version": "1", "sha256": "ab" * 32}, {})
    clip = frames(12)
    with pytest.raises(InconsistentTimesError, match=why):
        builder.build(truck_event(clip, first, second), POINT, clip, 5.0)
    assert store.list() == []
    assert builder.build(truck_event(clip, 4, 9), POINT, clip, 5.0).keys["original/best_2"]
