"""The reviewer's tools (issue 27 item 5): the queue filtered by town and by the days cases were detected on (in the
app's timezone) in the database query, with J/K following the filter; the plate text and the subtype corrected on
the case page, each correction stored with actor, time and the old and new value in the hash chain `feixian
evidence verify` checks; the point's zones drawn over the key frame, scaled to the frame."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_ui_seed import PASSWORD, POINT, World, make_world
from sqlalchemy import delete
from test_review_ui_app import _csrf, _decide, _signed_in

from cases.audit import Link, StoredLink, chain_problems
from cases.corrections import SUBTYPE_ZH, SUBTYPES, CorrectionError, corrected
from cases.db import make_engine, session_factory
from cases.lifecycle import ForbiddenTransitionError
from cases.models import Base, Party
from cases.records import NewCase
from cases.service import CaseService
from cases.users import UserService
from cases.verify import verify_case
from pipeline.taxonomy import OCCUPATION_CLASSES, SUBTYPE_LABELS, TRUCK_CLASSES

# A second town's point; its cases are opened straight in the store (the queue never reads their evidence).
ZHENXIN = POINT.model_copy(update={"id": "ZX-001", "name": "真南路", "town": "真新"})
# 23:59 and 00:00 in Shanghai on either side of the midnight that starts 2 March 2026.
LATE_1_MARCH = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
EARLY_2_MARCH = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def _record(event_id: str, point_id: str, at: datetime, subtype: str = "stall", plate: str | None = None) -> NewCase:
    category = next(c for c, subtypes in SUBTYPES.items() if subtype in subtypes)
    return NewCase(
        event_id, point_id, "cam", category, subtype, "front", at, at, None, plate,
        (31.3, 121.2), 0.8, {}, f"evidence/{event_id}.json", "ab" * 32,
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Two cases at JDZ-001 (嘉定镇) on 2 March, 08:30 in Shanghai; two at ZX-001 (真新), on 1 and 2 March."""
    world = make_world(tmp_path, n_cases=2)
    world.services = replace(world.services, points={POINT.id: POINT, ZHENXIN.id: ZHENXIN})
    for event_id, at in (("zx-late", LATE_1_MARCH), ("zx-early", EARLY_2_MARCH)):
        world.case_ids.append(world.cases.open_case(_record(event_id, ZHENXIN.id, at))[0].id)
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


def _correct(client: TestClient, case_id: int, field: str, value: str) -> str:
    """Send a correction from the case page; the page it leads back to."""
    token = _csrf(client.get(f"/cases/{case_id}").text)
    r = client.post(f"/cases/{case_id}/correction", data={"field": field, "value": value, "csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, f"/cases/{case_id}")
    return client.get(f"/cases/{case_id}").text


def _chain_ok(world: World, case_id: int) -> bool:
    return verify_case(session_factory(make_engine(world.db_url)), world.store, case_id).ok


def test_corrections_are_chained_with_actor_and_old_and_new_values(world: World) -> None:
    case_id = world.case_ids[0]
    rev = _signed_in(world)
    page = rev.get(f"/cases/{case_id}").text
    assert 'id="plate-form"' in page and 'data-subtype="2"' in page

    page = _correct(rev, case_id, "plate", " 沪d·12345 ")
    assert "车牌已更正：— → 沪D12345。" in page and 'value="沪D12345"' in page and "机器识别：—" in page
    page = _correct(rev, case_id, "subtype", "goods")
    assert "更正细类：占道设摊 → 乱堆物料" in page and "更正车牌：— → 沪D12345" in page
    assert 'value="goods" data-subtype="3" aria-current="true"' in page
    assert "<dd>市容占道 · 乱堆物料</dd>" in page and "<dd>沪D12345 · " in page  # the facts as corrected
    row = re.search(rf'<tr data-href="/cases/{case_id}">.*?</tr>', rev.get("/queue").text, re.S)
    assert row and "乱堆物料" in row[0] and "沪D12345" in row[0]  # and so does the queue

    links = [(t.from_state, t.to_state, t.actor, t.details) for t in world.cases.history(case_id)]
    assert links[1:] == [
        ("detected", "detected", "rev", {"corrected": "plate", "old": None, "new": "沪D12345"}),
        ("detected", "detected", "rev", {"corrected": "subtype", "old": "stall", "new": "goods"}),
    ]
    # The evidence stays as the machine recorded it, so its facts still match the manifest and the chain holds.
    case = world.cases.get(case_id)
    assert (case.party, case.subtype) == (None, "stall")
    assert _chain_ok(world, case_id)
    # The same value again records nothing; the decision then chains on after the corrections.
    _correct(rev, case_id, "plate", "沪D12345")
    assert len(world.cases.history(case_id)) == 3
    assert _decide(rev, case_id, "confirmed").status_code == 303
    assert [t.to_state for t in world.cases.history(case_id)] == ["detected"] * 3 + ["confirmed"]
    assert _chain_ok(world, case_id)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("plate", "ABC", "'ABC' 不是有效的车牌号 / 'ABC' is not a valid plate"),
        ("plate", "", "'' 不是有效的车牌号 / '' is not a valid plate"),
        ("subtype", "dirty", "类别 occupation 没有细类 'dirty' / category occupation has no subtype 'dirty'"),
        ("confidence", "1", "不能更正 'confidence' / 'confidence' cannot be corrected"),
    ],
)
def test_a_bad_correction_is_refused_and_changes_nothing(world: World, field: str, value: str, said: str) -> None:
    case_id = world.case_ids[0]
    rev = _signed_in(world)
    page = _correct(rev, case_id, field, value)
    assert f"未更正：{said}" in html.unescape(page)
    assert [t.to_state for t in world.cases.history(case_id)] == ["detected"]
    assert _chain_ok(world, case_id)


def test_only_the_reviewer_holding_an_undecided_case_corrects_it(world: World) -> None:
    case_id = world.case_ids[0]
    world.users.add_user("li", PASSWORD, "reviewer", "李审核")
    rev, li = _signed_in(world), _signed_in(world, "li")
    rev.get(f"/cases/{case_id}")
    token = _csrf(li.get(f"/cases/{case_id}").text)
    r = li.post(f"/cases/{case_id}/correction", data={"field": "subtype", "value": "goods", "csrf_token": token})
    assert r.status_code == 409 and "王审核（rev） 正在审核此案件" in r.text
    assert _decide(rev, case_id, "confirmed").status_code == 303
    page = _correct(rev, case_id, "subtype", "goods")
    assert "该案件已被审核" in page and 'id="subtype-form"' not in page
    assert [t.to_state for t in world.cases.history(case_id)] == ["detected", "confirmed"]


def test_the_subtypes_offered_are_the_taxonomys() -> None:
    derived = {
        "occupation": set(OCCUPATION_CLASSES.values()),
        "vehicle": {s for s in TRUCK_CLASSES.values() if s},
    }
    assert {c: set(s) for c, s in SUBTYPES.items()} == derived
    assert SUBTYPE_ZH == {s: label["zh-CN"] for s, label in SUBTYPE_LABELS.items()}


def test_the_zones_are_drawn_over_the_frame_scaled_to_it(world: World) -> None:
    case_id = world.case_ids[0]
    page = _signed_in(world).get(f"/cases/{case_id}").text
    # The seed's frames are 320 x 240 pixels; the overlay's inner box counts percent of each side.
    assert page.count('<svg class="zones" viewBox="0 0 320 240"') == 3  # the clip and both original key frames
    drawn = re.findall(r'<polygon class="zone zone-no_occupation zone-case" data-zone="front" points="([^"]+)"', page)
    assert len(drawn) == 3
    (zone,) = POINT.zones
    want = [(100 * x / 320, 100 * y / 240) for x, y in zone.polygon]
    for points in drawn:
        got = [tuple(float(v) for v in pair.split(",")) for pair in points.split()]
        assert got == [pytest.approx(p, abs=0.005) for p in want]


def test_the_store_filters_and_chains_corrections_on_each_backend(case_engine) -> None:
    with case_engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    sessions = session_factory(case_engine)
    users = UserService(sessions)
    users.add_user("li", PASSWORD, "reviewer", "李审核")
    users.add_user("wang", PASSWORD, "legal", "王法制")
    with sessions.begin() as s:  # the plate read and the plate the reviewer corrects it to, each a vehicle's
        read, right = (
            Party(kind="vehicle", name=n, plate=p) for n, p in (("甲运输", "沪D62819"), ("乙运输", "沪D62818"))
        )
        s.add_all([read, right])
    cases = CaseService(sessions)
    late, early, _ = (
        cases.open_case(_record(event_id, point_id, at, "dirty", "沪D62819"))[0]
        for event_id, point_id, at in (
            ("late", ZHENXIN.id, LATE_1_MARCH),
            ("early", ZHENXIN.id, EARLY_2_MARCH),
            ("elsewhere", POINT.id, EARLY_2_MARCH),
        )
    )
    assert [c.id for c in cases.list_cases(point_ids=[ZHENXIN.id], until=EARLY_2_MARCH)] == [late.id]
    assert [c.id for c in cases.list_cases(point_ids=[ZHENXIN.id], since=EARLY_2_MARCH)] == [early.id]
    assert cases.count_cases(point_ids=[ZHENXIN.id], since=LATE_1_MARCH, until=EARLY_2_MARCH) == 1
    assert cases.count_cases(point_ids=[]) == 0

    assert cases.correct(early.id, "plate", "沪d·62818", "li") == ("沪D62819", "沪D62818")
    assert cases.correct(early.id, "subtype", "uncovered", "li") == ("dirty", "uncovered")
    with pytest.raises(ForbiddenTransitionError, match="不审核证据 / role legal does not review evidence"):
        cases.correct(early.id, "subtype", "dirty", "wang")
    with pytest.raises(CorrectionError, match="category vehicle has no subtype 'goods'"):
        cases.correct(early.id, "subtype", "goods", "li")
    history = cases.history(early.id)
    assert [(t.actor, t.details) for t in history[1:]] == [
        ("li", {"corrected": "plate", "old": "沪D62819", "new": "沪D62818"}),
        ("li", {"corrected": "subtype", "old": "dirty", "new": "uncovered"}),
    ]
    links = [StoredLink(Link(t.seq, t.from_state, t.to_state, t.actor, t.at, t.reason, t.details), t.prev_hash, t.hash)
             for t in history]  # fmt: skip
    case = cases.get(early.id)
    assert chain_problems(case.event_id, case.manifest_sha256, case.state, links) == []
    assert corrected(case, (t.details for t in history)) == {"plate": "沪D62818", "subtype": "uncovered"}
    # Every reader gets the corrected facts, the machine's reading kept; the party is the corrected plate's.
    shown = cases.as_corrected([late, case])
    assert [(c.party, c.subtype, c.recorded_party) for c in shown] == [
        ("沪D62819", "dirty", "沪D62819"),
        ("沪D62818", "uncovered", "沪D62819"),
    ]
    assert (late.party_id, case.party_id) == (read.id, right.id)
