"""The reviewer's tools (issue 27 item 5): the queue filtered by town and by the days cases were detected on (in the
app's timezone) in the database query, with J/K following the filter; the plate text and the subtype corrected on
the case page, each correction stored with actor, time and the old and new value in the hash chain `feixian
evidence verify` checks; the point's zones drawn over the key frame, scaled to the frame."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from review_ui_seed import POINT, World, make_world
from test_review_ui_app import _signed_in

from cases.records import NewCase

# A second town's point; its cases are opened straight in the store (the queue never reads their evidence).
ZHENXIN = POINT.model_copy(update={"id": "ZX-001", "name": "真南路", "town": "真新"})
# 23:59 and 00:00 in Shanghai on either side of the midnight that starts 2 March 2026.
LATE_1_MARCH = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
EARLY_2_MARCH = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def _open(world: World, event_id: str, point_id: str, at: datetime) -> int:
    record = NewCase(
        event_id, point_id, "cam", "occupation", "stall", "front", at, at, None, None,
        (31.3, 121.2), 0.8, {}, f"evidence/{event_id}.json", "ab" * 32,
    )  # fmt: skip
    return world.cases.open_case(record)[0].id


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Two cases at JDZ-001 (嘉定镇) on 2 March, 08:30 in Shanghai; two at ZX-001 (真新), on 1 and 2 March."""
    world = make_world(tmp_path, n_cases=2)
    world.services = replace(world.services, points={POINT.id: POINT, ZHENXIN.id: ZHENXIN})
    world.case_ids += [
        _open(world, "zx-late", ZHENXIN.id, LATE_1_MARCH),
        _open(world, "zx-early", ZHENXIN.id, EARLY_2_MARCH),
    ]
    return world


def _listed(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-href="/cases/(\d+)">', page)]


@pytest.mark.parametrize(
    ("query", "picked"),
    [
        ("town=真新", [2, 3]),
        ("town=嘉定镇", [0, 1]),
        ("detected_to=2026-03-01", [2]),
        ("detected_from=2026-03-02", [3, 0, 1]),
        ("town=真新&detected_from=2026-03-02&detected_to=2026-03-02", [3]),
        ("point=JDZ-001&town=真新", []),
        ("town=nowhere&detected_from=not-a-day", [2, 3, 0, 1]),  # values the page does not offer are ignored
    ],
)
def test_the_queue_filters_by_town_and_detection_day(world: World, query: str, picked: list[int]) -> None:
    page = _signed_in(world).get(f"/queue?{query}").text
    assert _listed(page) == [world.case_ids[i] for i in picked]
    assert f"共 {len(picked)} 件" in page or (not picked and "队列已清空" in page)


def test_the_store_filters_in_its_query(world: World) -> None:
    ids = world.case_ids
    assert [c.id for c in world.cases.list_cases(point_ids=[ZHENXIN.id], since=EARLY_2_MARCH)] == [ids[3]]
    assert [c.id for c in world.cases.list_cases(until=EARLY_2_MARCH)] == [ids[2]]
    assert world.cases.count_cases(point_ids=[POINT.id, ZHENXIN.id], since=LATE_1_MARCH) == 4
    assert world.cases.count_cases(point_ids=[]) == 0


def test_j_and_k_follow_the_town_and_days_chosen(world: World) -> None:
    jdz_1, jdz_2, zx_late, zx_early = world.case_ids
    rev = _signed_in(world)
    page = rev.get("/queue?town=真新").text
    assert 'name="town"' in page and '<option value="真新" selected>' in page
    assert f'href="/cases/{zx_early}" data-key="j"' in rev.get(f"/cases/{zx_late}").text
    last = rev.get(f"/cases/{zx_early}").text
    assert f'href="/cases/{zx_late}" data-key="k"' in last and 'data-key="j"' not in last

    assert 'value="2026-03-02"' in rev.get("/queue?detected_from=2026-03-02").text
    first = rev.get(f"/cases/{zx_early}").text
    assert 'data-key="k"' not in first and f'href="/cases/{jdz_1}" data-key="j"' in first
    # The case after a decision is the filter's next one too.
    page = rev.get(f"/cases/{jdz_1}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = rev.post(f"/cases/{jdz_1}/decision", data={"decision": "confirmed", "csrf_token": token})
    assert r.headers["location"] == f"/cases/{jdz_2}"
