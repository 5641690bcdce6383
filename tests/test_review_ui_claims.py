"""Claiming in the review UI (issue 27 item 5): opening a case claims it, another reviewer sees who holds it and is
refused (409) while the claim holds, the holder's decision releases it; the numbered void reasons and the queue's
filters. SQLite here; the claims themselves are tested on PostgreSQL too (test_case_claims)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from review_ui_seed import PASSWORD, World, make_world
from test_review_ui_app import HTML, _csrf, _decide, _signed_in

from cases.claims import ClaimService
from cases.db import make_engine, session_factory
from review_ui.void_reasons import VOID_REASONS


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, n_cases=3)
    world.users.add_user("li", PASSWORD, "reviewer", "李审核")
    return world


def test_an_opened_case_is_held_for_its_reviewer(world: World) -> None:
    first, second, _ = world.case_ids
    rev, li = _signed_in(world, "rev"), _signed_in(world, "li")
    assert 'class="muted small claim-mine"' in rev.get(f"/cases/{first}").text

    page = li.get(f"/cases/{first}", headers=HTML).text
    assert "王审核（rev） 正在审核此案件" in page and 'id="confirm-form"' not in page
    assert "rev" in li.get("/queue").text.split(f"/cases/{first}", 2)[2].split("</tr>")[0]
    # li's previous/next skip the case rev holds.
    assert f'href="/cases/{first}" data-key="k"' not in li.get(f"/cases/{second}").text

    r = _decide(li, first, "confirmed", token=_csrf(page))
    assert r.status_code == 409
    assert "王审核（rev） 正在审核此案件" in r.text and "认领至" in r.text
    assert world.cases.get(first).state == "detected"

    assert _decide(rev, first, "confirmed").status_code == 303
    assert [(t.to_state, t.actor) for t in world.cases.history(first)][-1] == ("confirmed", "rev")
    assert world.cases.claims.holders([first]) == {}


def test_an_expired_claim_lets_another_reviewer_decide(world: World) -> None:
    first = world.case_ids[0]
    now = [world.services.clock()]
    world.cases.claims = ClaimService(session_factory(make_engine(world.db_url)), minutes=10, clock=lambda: now[0])
    rev, li = _signed_in(world, "rev"), _signed_in(world, "li")
    rev.get(f"/cases/{first}")
    now[0] += timedelta(minutes=10)
    assert _decide(li, first, "voided", "误检").status_code == 303
    assert world.cases.get(first).state == "voided"
    # rev's decision, sent later from the stale page, is not applied.
    assert _decide(rev, first, "confirmed").status_code == 303
    assert world.cases.get(first).state == "voided"


def test_a_numbered_void_reason_is_recorded_in_zh_cn(world: World) -> None:
    first = world.case_ids[0]
    rev = _signed_in(world, "rev")
    page = rev.get(f"/cases/{first}?lang=en").text
    assert f'data-void-reason="{len(VOID_REASONS)}"' in page and VOID_REASONS[2][1] in page
    token = _csrf(page)
    r = rev.post(f"/cases/{first}/decision", data={"decision": "voided", "reason_number": "3", "csrf_token": token})
    assert r.status_code == 303
    assert world.cases.history(first)[-1].reason == "车牌不清"


def test_the_queue_filters_and_keeps_its_filter_for_next(world: World) -> None:
    first, second, third = world.case_ids
    rev = _signed_in(world, "rev")
    assert 'class="grid queue"' not in rev.get("/queue?category=vehicle").text
    # The kept filter (no vehicle cases) leaves the case page with nothing next.
    assert 'data-key="j"' not in rev.get(f"/cases/{first}").text
    page = rev.get("/queue?category=occupation&point=JDZ-001&state=detected").text
    assert all(f'href="/cases/{i}"' in page for i in (first, second, third))
    assert f'href="/cases/{second}" data-key="j"' in rev.get(f"/cases/{first}").text
    assert rev.get("/queue?state=bogus").status_code == 200  # an unknown value is ignored, not an error
