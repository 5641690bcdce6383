"""The reviewer's keyboard in a real browser (issue 27 item 5 and its acceptance): Debian's Chromium driven by
Playwright clears five cases with the keyboard alone, three confirmed and two voided with numbered reasons, each
decision loading the next case; the database then holds each transition with its actor in a valid hash chain.
Left out of `make check` with test_browser_review (the Makefile's CHECK_LEFT_OUT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_ui_seed import PASSWORD, World, make_world
from test_browser_review import CHROMIUM, base_url, open_page  # noqa: F401 (base_url: uvicorn serving this world)
from test_cases_service import stored_chain

from review_ui.void_reasons import VOID_REASONS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)

# The keys pressed on each case in queue order, and what the case becomes.
PLAN = [("c", "confirmed", None), ("Enter", "confirmed", None), ("v 1", "voided", 1), ("c", "confirmed", None)]
PLAN += [("v 3", "voided", 3)]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, n_cases=len(PLAN))


def press(page, keys: str) -> None:
    for key in keys.split():
        page.keyboard.press(key)


def test_a_reviewer_clears_five_cases_by_keyboard(world: World, base_url: str) -> None:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    ids = world.case_ids
    with sync_api.sync_playwright() as p:
        browser, page, problems = open_page(p)

        page.goto(f"{base_url}/queue")
        page.fill("#username", "rev")
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base_url}/queue")

        press(page, "j Enter")
        page.wait_for_url(f"{base_url}/cases/{ids[0]}")
        # ? shows the help, in zh-CN first; ? again hides it.
        press(page, "?")
        assert page.is_visible("#keys-help") and "快捷键" in page.inner_text("#keys-help")
        press(page, "?")
        assert not page.is_visible("#keys-help")
        # p plays the clip and pauses it.
        page.wait_for_function("() => document.getElementById('clip').readyState >= 2")
        press(page, "p")
        page.wait_for_function("() => !document.getElementById('clip').paused")
        press(page, "p")
        page.wait_for_function("() => document.getElementById('clip').paused")
        # j and k walk the queue.
        press(page, "j")
        page.wait_for_url(f"{base_url}/cases/{ids[1]}")
        press(page, "k")
        page.wait_for_url(f"{base_url}/cases/{ids[0]}")

        for i, (keys, _, _) in enumerate(PLAN):
            press(page, keys)
            page.wait_for_url(f"{base_url}/cases/{ids[i + 1]}" if i + 1 < len(PLAN) else f"{base_url}/queue")
        assert "队列已清空" in page.inner_text("main")
        browser.close()
    assert problems == []

    for case_id, (_, state, number) in zip(ids, PLAN, strict=True):
        case = world.cases.get(case_id)
        last = world.cases.history(case_id)[-1]
        assert (case.state, last.from_state, last.to_state, last.actor) == (state, "detected", state, "rev")
        assert last.reason == (VOID_REASONS[number - 1][0] if number else None)
        assert stored_chain(world.cases, case) == []
    assert world.cases.claims.holders(ids) == {}
