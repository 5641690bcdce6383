"""The review UI in a real browser: Debian's Chromium driven by Playwright against the app served by
uvicorn, with cases raised through the real evidence builder (H.264 clip, key frames, manifest)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from review_ui_seed import PASSWORD, World, make_world
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cases.models import AccessLog
from review_ui.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/feixian_case.png")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, n_cases=2)


@pytest.fixture
def base_url(world: World) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(world.services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    # uvicorn sets `started` once it listens; poll it without sleeping a fixed time.
    while not server.started and thread.is_alive():
        started.wait(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def open_page(playwright) -> tuple[Any, Any, list[str]]:
    """Chromium with one zh-CN page, and the list its script errors and Content-Security-Policy refusals go to."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"{msg.text} {msg.location}") if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    return browser, page, problems


def test_review_a_case_in_chromium(world: World, base_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    first, second = world.case_ids
    with sync_api.sync_playwright() as p:
        browser, page, problems = open_page(p)

        page.goto(f"{base_url}/queue")
        assert "/login" in page.url
        page.fill("#username", "rev")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base_url}/queue")
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.text_content("h1") == "待审核队列"
        rows = page.locator("table.queue tbody tr")
        assert rows.count() == 2
        assert "占道设摊" in rows.nth(0).inner_text()

        # Keyboard: j selects the first row, Enter opens it.
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base_url}/cases/{first}")

        page.wait_for_function("() => document.getElementById('clip').readyState >= 2")
        assert page.evaluate("() => document.getElementById('clip').duration") > 0
        page.evaluate("() => document.getElementById('clip').play()")
        page.wait_for_function("() => document.getElementById('clip').currentTime > 0.5")
        # Seeking needs the evidence route's byte ranges.
        seeked_to = page.evaluate(
            """() => new Promise(done => {
                const v = document.getElementById('clip');
                v.pause();
                v.addEventListener('seeked', () => done(v.currentTime), {once: true});
                v.currentTime = 3.0;
            })"""
        )
        assert seeked_to == pytest.approx(3.0, abs=0.25)
        assert page.locator(".keyframes img").count() == 4
        page.wait_for_function("() => [...document.querySelectorAll('.keyframes img')].every(i => i.naturalWidth > 0)")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # c confirms; the next case in the queue opens with a notice about the first.
        page.keyboard.press("c")
        page.wait_for_url(f"{base_url}/cases/{second}")
        assert f"案件 {first} 已确认" in page.text_content(".flash")

        page.goto(f"{base_url}/queue")
        ids = page.locator("table.queue tbody tr td:first-child").all_inner_texts()
        assert ids == [str(second)]
        browser.close()
    assert problems == []

    assert world.cases.get(first).state == "confirmed"
    with Session(create_engine(world.db_url)) as s:
        read = set(s.scalars(select(AccessLog.key).where(AccessLog.username == "rev")))
    assert world.cases.get(first).evidence["clip"] in read
