"""The reviewer's tools in a real browser (issue 27 item 5): in Debian's Chromium, '.' and ',' step the paused clip one
frame (its rate from the manifest) forward and back, '>' and '<' change its speed, 'z' hides the zones drawn over it,
's' then a number changes the subtype and 'e' edits the plate (Enter saves); both corrections land in the case's hash
chain with the reviewer as actor. Left out of `make check` with the other browser tests (the Makefile's
CHECK_LEFT_OUT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_ui_seed import FPS, PASSWORD, World, make_world
from test_browser_review import CHROMIUM, base_url, open_page  # noqa: F401 (base_url: uvicorn serving this world)

from cases.db import make_engine, session_factory
from cases.verify import verify_case

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)

CLIP = "document.getElementById('clip')"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, n_cases=1)


def test_frame_step_speed_zones_subtype_and_plate_by_keyboard(world: World, base_url: str) -> None:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    (case_id,) = world.case_ids
    with sync_api.sync_playwright() as p:
        browser, page, problems = open_page(p)
        page.goto(f"{base_url}/login?next=/cases/{case_id}")
        page.fill("#username", "rev")
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base_url}/cases/{case_id}")
        page.wait_for_function(f"() => {CLIP}.readyState >= 2")

        for key, frames in ((".", 1), (".", 2), (",", 1)):
            page.keyboard.press(key)
            assert page.evaluate(f"() => {CLIP}.paused")
            assert page.evaluate(f"() => {CLIP}.currentTime") == pytest.approx(frames / FPS, abs=1e-3)
        for key, rate in ((">", 2), (">", 2), ("<", 1), ("<", 0.5), ("<", 0.25), ("<", 0.25)):
            page.keyboard.press(key)
            assert page.evaluate(f"() => {CLIP}.playbackRate") == rate
        assert page.get_attribute('[data-speed="0.25"]', "aria-pressed") == "true"

        assert page.is_visible("svg.zones")
        page.keyboard.press("z")
        assert not page.is_visible("svg.zones")
        page.keyboard.press("z")
        assert page.is_visible("svg.zones")

        page.keyboard.press("s")
        page.keyboard.press("3")  # 乱堆物料 (goods)
        page.wait_for_selector('#subtypes [aria-current="true"][value="goods"]')
        page.keyboard.press("e")
        page.keyboard.type("沪A·8K123")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=车牌已更正：— → 沪A8K123。")
        assert page.input_value("#plate-text") == "沪A8K123"
        browser.close()
    assert problems == []

    links = [(t.from_state, t.to_state, t.actor, t.details) for t in world.cases.history(case_id)]
    assert links[1:] == [
        ("detected", "detected", "rev", {"corrected": "subtype", "old": "stall", "new": "goods"}),
        ("detected", "detected", "rev", {"corrected": "plate", "old": None, "new": "沪A8K123"}),
    ]
    assert verify_case(session_factory(make_engine(world.db_url)), world.store, case_id).problems == []
