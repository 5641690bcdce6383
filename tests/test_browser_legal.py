"""The legal procedure in a real browser (issue 27 acceptance): in Debian's Chromium driven by Playwright, a legal
reviewer signs in, opens a confirmed case from the legal work queue, files it, issues its notice and reads it, then
tries to decide inside the statement window and is refused on screen; the database then holds each transition with
its actor in a chain `feixian evidence verify` finds intact. Left out of `make check` with the other browser tests
(the Makefile's CHECK_LEFT_OUT)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from review_ui_seed import PASSWORD, POINT, World, make_world
from test_browser_review import CHROMIUM, base_url, open_page  # noqa: F401 (base_url: uvicorn serving this world)

from cases.lifecycle import State
from cases.verify import verify_case

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)

NOTICE_SCREENSHOT = Path("/tmp/feixian_notice.png")


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, n_cases=1)
    world.users.add_user("wang", PASSWORD, "legal", "王法制")
    world.cases.transition(world.case_ids[0], State.CONFIRMED, "rev")
    return world


def test_a_legal_reviewer_files_notifies_and_is_refused_a_decision(world: World, base_url: str) -> None:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    case_id = world.case_ids[0]
    case_url = f"{base_url}/cases/{case_id}"
    with sync_api.sync_playwright() as p:
        browser, page, problems = open_page(p)

        page.goto(f"{base_url}/work")
        page.fill("#username", "wang")
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base_url}/work")
        assert page.text_content("h1") == "法制工作队列"
        page.click(f"table.work tr[data-case='{case_id}'] a")
        page.wait_for_url(case_url)

        # File the case with a minor fine: the panel then offers the notice.
        page.fill("#move-filed input[name=fine]", "200")
        page.select_option("#move-filed select[name=party_kind]", "person")
        page.click("#move-filed button[type=submit]")
        page.wait_for_selector("#move-notified")
        assert page.url == case_url
        assert "已立案" in page.text_content(".flash")

        # Issue the notice (the proposed fine carried over from the filing), then read it.
        assert page.input_value("#move-notified input[name=fine]") == "200"
        page.click("#move-notified button[type=submit]")
        page.wait_for_selector("#notice-link")
        page.click("#notice-link")
        page.wait_for_url(f"{case_url}/notice")
        notice = page.inner_text("#notice")
        for expected in ("行政处罚事先告知书", POINT.name, "占道设摊", "罚款人民币 200 元", "陈述和申辩", "第四十四条"):
            assert expected in notice, expected
        due = world.cases.get(case_id).statement_due_at.astimezone(ZoneInfo(world.services.timezone))
        assert f"{due:%Y-%m-%d %H:%M}" in notice
        page.wait_for_function("() => [...document.querySelectorAll('#notice img')].every(i => i.naturalWidth > 0)")
        assert page.locator("#notice img").count() == 2
        chain = world.cases.history(case_id)[-1]
        assert chain.hash in page.inner_text("#notice-hash")
        # Printed, the notice is the document alone.
        page.emulate_media(media="print")
        assert not page.is_visible("header.topbar") and page.is_visible("#notice")
        page.screenshot(path=str(NOTICE_SCREENSHOT), full_page=True)
        page.emulate_media(media="screen")

        # Deciding inside the statement window, without the party's waiver: refused on the page, nothing changed.
        page.goto(case_url)
        page.fill("#move-decided textarea[name=reason]", "拟作出处罚决定")
        with page.expect_navigation() as navigation:
            page.click("#move-decided button[type=submit]")
        assert navigation.value.status == 409
        refusal = page.inner_text("#procedure .refusal")
        assert "陈述申辩期至" in refusal and "未届满" in refusal and "statement window" in refusal
        assert "已告知" in page.inner_text(".page-head .state")
        browser.close()
    # Chromium reports the refused move's 409 as a failed load; nothing else may have gone wrong.
    assert [m for m in problems if "409" not in m] == []

    history = world.cases.history(case_id)
    steps = [(t.from_state, t.to_state, t.actor) for t in history]
    assert steps == [
        (None, "detected", "pipeline"),
        ("detected", "confirmed", "rev"),
        ("confirmed", "filed", "wang"),
        ("filed", "notified", "wang"),
    ]
    assert history[2].details == {"fine_yuan": 200, "party_kind": "person"}
    assert world.cases.get(case_id).state == State.NOTIFIED
    report = verify_case(world.cases.sessions, world.store, case_id)
    assert report.ok, report.problems
