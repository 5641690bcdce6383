"""The ops page (issue 26 item 3): for ops (and admin) only, zh-CN first, each point's state, last frame, frames/s,
drops and detector load with charts the app draws itself; and in headless Chromium over a live run, where the page
refreshes itself with no script error or CSP refusal.

The browser test leaves its screenshot in its tmp folder, or at $FEIXIAN_OPS_SCREENSHOT (how docs/ops-page.png
was made: `FEIXIAN_OPS_SCREENSHOT=docs/ops-page.png pytest tests/test_ops_page.py -k chromium`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from review_ui_seed import NOW, PASSWORD, POINT, World, make_world
from test_browser_review import CHROMIUM, CHROMIUM_ARGS, _free_port
from test_metrics_endpoint import eventually, ops_scenario

from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import LivePipeline, Runtime
from pipeline.bus import MemoryBus
from review_ui.app import create_app
from review_ui.ops import OpsView, PointOps, StateAges

VIEW = OpsView(
    points=[
        PointOps(
            POINT.id,
            up=True,
            last_frame_at=NOW - timedelta(seconds=3),
            frames_per_s=4.9,
            detector_load=0.18,
            pending=2,
            dropped={"out_of_order": 1, "rate_limited": 4},
            fps_history=[4.8, 5.0, 4.9],
            load_history=[0.2, 0.17, 0.18],
        ),
        PointOps("GYQ-001", up=False, last_frame_at=None, frames_per_s=None, detector_load=None, pending=0),
    ],
    cases=[
        StateAges("detected", 3, True, timedelta(days=4), over_target=1),
        StateAges("closed", 7, False),
    ],
    target_s=72 * 3600,
    interval_s=5.0,
)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    world: World = make_world(tmp_path, n_cases=0)
    world.users.add_user("root", PASSWORD, "admin", "钱管理")
    services = replace(world.services, ops=lambda: VIEW)
    return TestClient(create_app(services))


def sign_in(client: TestClient, username: str) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 200, r.text


def test_anonymous_is_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/ops", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fops"


def test_a_reviewer_is_refused(client: TestClient) -> None:
    sign_in(client, "rev")
    r = client.get("/ops", headers={"Accept": "text/html"})
    assert r.status_code == 403
    assert "您的角色无权进行此操作" in r.text and "运行监控" not in r.text


@pytest.mark.parametrize("username", ["ops", "root"])
def test_ops_and_admin_see_every_point_in_chinese_first(client: TestClient, username: str) -> None:
    sign_in(client, username)
    r = client.get("/ops")
    assert r.status_code == 200
    html = r.text
    assert '<html lang="zh-CN">' in html and "<h1>运行监控</h1>" in html
    assert "1/2 个点位运行中" in html and "3秒前" in html and "尚无" in html
    assert "时间倒序 <b>1</b>" in html and "超过限速 <b>4</b>" in html
    assert 'class="point-up"' in html and 'class="point-down"' in html
    assert html.count('<svg class="spark"') == 4 and html.count('class="spark-line"') == 2  # the down point: none
    assert "超时" in html and "4天0小时" in html
    english = client.get("/ops?lang=en").text
    assert "<h1>Operations</h1>" in english and "1 of 2 points up" in english and "3 s ago" in english
    # Only the app's own script; the CSP allows no inline one.
    assert "<script>" not in html and '<script src="/static/ops.js" defer></script>' in html


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """`feixian run` on the ops scenario: the file points play in real time, the push point gets nothing."""
    runtime = Runtime(load_config(ops_scenario(tmp_path / "scenario", video_s=20.0), tmp_path / "data"))
    runtime.users.add_user("ops", PASSWORD, "ops", "赵运维")
    bus = MemoryBus(runtime.config.settings.bus.max_pending)
    live = LivePipeline(runtime, bus, runtime.config.points, with_sources=True)
    port = _free_port()
    app = build_app(runtime, bus, live, metrics_interval_s=0.5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    live.start()
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), "uvicorn listens")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        live.stop(60)


def detected(base_url: str, point_id: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    family = {f.name: f for f in text_string_to_metric_families(text)}.get("feixian_frames_detected")
    return sum(s.value for s in family.samples if s.labels["point"] == point_id) if family else 0.0


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_ops_page_in_chromium(live_server: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    # Several seconds of the cameras' 5 frames/s, so the charts have a history to draw.
    eventually(lambda: detected(live_server, "FLT-000") >= 30, "six seconds of frames")
    shot = Path(os.environ.get("FEIXIAN_OPS_SCREENSHOT") or tmp_path / "ops-page.png")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720}, locale="zh-CN")
        page.set_default_timeout(30_000)
        problems: list[str] = []  # script errors and Content-Security-Policy refusals
        page.on("console", lambda msg: problems.append(f"{msg.text} {msg.location}") if msg.type == "error" else None)
        page.on("pageerror", lambda err: problems.append(str(err)))

        page.goto(f"{live_server}/ops")
        page.fill("#username", "ops")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{live_server}/ops")
        assert page.text_content("h1") == "运行监控"
        rows = page.locator("table.ops-points tbody tr")
        assert rows.count() == 3
        assert "尚无" in page.locator('tr[data-point="FLT-002"]').inner_text()
        assert page.locator('tr[data-point="FLT-000"] .spark-line').count() == 2
        # ops.js swaps in fresh figures: the node is replaced while the page stays.
        page.evaluate("() => { document.getElementById('ops-live').dataset.old = '1'; }")
        page.wait_for_function("() => !document.getElementById('ops-live').dataset.old")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert problems == []
    assert shot.stat().st_size > 10_000
