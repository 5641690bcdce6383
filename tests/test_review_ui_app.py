"""The review UI through FastAPI's TestClient, over a real SQLite case store and evidence store."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from review_ui_seed import NOW, PASSWORD, SECRET, World, open_world, raise_case, seed
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cases.models import AccessLog, User
from ingest.push_api import make_push_router
from pipeline.evidence import EvidenceBuilder
from pipeline.frames import encode_jpeg
from review_ui.app import create_app

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review-ui-seed")
    seed(root, n_cases=3)
    return root


@pytest.fixture
def world(seeded: Path, tmp_path: Path) -> World:
    shutil.copytree(seeded, tmp_path / "world")
    return open_world(tmp_path / "world")


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _client(world: World) -> TestClient:
    return TestClient(create_app(world.services), follow_redirects=False)


def _signed_in(world: World, username: str = "rev") -> TestClient:
    client = _client(world)
    token = _csrf(client.get("/login").text)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text
    return client


def _decide(client: TestClient, case_id: int, decision: str, reason: str = "", token: str | None = None):
    token = token if token is not None else _csrf(client.get(f"/cases/{case_id}").text)
    data = {"decision": decision, "reason": reason, "csrf_token": token}
    return client.post(f"/cases/{case_id}/decision", data=data)


def _access_log(world: World) -> list[tuple[str, str]]:
    with Session(create_engine(world.db_url)) as s:
        return [(a.username, a.key) for a in s.scalars(select(AccessLog).order_by(AccessLog.id))]


def test_healthz(world: World) -> None:
    r = _client(world).get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_pages_need_sign_in(world: World) -> None:
    client = _client(world)
    r = client.get("/cases/1?lang=en")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fcases%2F1%3Flang%3Den"
    assert client.get("/queue").headers["location"] == "/login?next=%2Fqueue"
    assert client.get("/cases/1/evidence/clip").status_code == 401


def test_sign_in_checks_password_and_csrf(world: World) -> None:
    client = _client(world)
    page = client.get("/login")
    assert '<html lang="zh-CN">' in page.text
    token = _csrf(page.text)
    bad = client.post("/login", data={"username": "rev", "password": "wrong-pass", "csrf_token": token})
    assert bad.status_code == 401
    assert "用户名或密码错误" in bad.text
    forged = client.post("/login", data={"username": "rev", "password": PASSWORD, "csrf_token": "x"})
    assert forged.status_code == 400
    ok = client.post("/login", data={"username": "rev", "password": PASSWORD, "csrf_token": token, "next": "/cases/2"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/cases/2")
    # The signed-in session gets a fresh CSRF token: the anonymous one no longer works.
    assert _csrf(client.get("/queue").text) != token


def test_sign_in_never_redirects_off_site(world: World) -> None:
    client = _client(world)
    token = _csrf(client.get("/login").text)
    data = {"username": "rev", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"}
    assert client.post("/login", data=data).headers["location"] == "/queue"


def test_queue_lists_detected_cases_oldest_first_in_chinese(world: World) -> None:
    world.services = replace(world.services, clock=lambda: NOW + timedelta(hours=2, minutes=5))
    client = _signed_in(world)
    page = client.get("/queue").text
    assert '<html lang="zh-CN">' in page
    assert "待审核队列" in page and "共 3 件" in page
    rows = re.findall(r'<tr data-href="/cases/(\d+)">', page)
    assert [int(r) for r in rows] == world.case_ids
    assert page.count("占道设摊") == 3
    assert "博乐路沙霞路口（嘉定镇）" in page
    assert "87%" in page
    assert "2026-03-02 08:30:03" in page  # trigger time of the first case in Beijing time


def test_language_switch_is_remembered(world: World) -> None:
    client = _signed_in(world)
    page = client.get("/queue?lang=en").text
    assert '<html lang="en">' in page
    assert "Review queue" in page and "Street stall" in page and "待审核队列" not in page
    assert '<html lang="en">' in client.get("/queue").text
    assert '<html lang="zh-CN">' in client.get("/queue?lang=zh-CN").text
    # An unknown language keeps the current one.
    assert '<html lang="zh-CN">' in client.get("/queue?lang=fr").text


def test_case_page_shows_evidence_manifest_and_history(world: World) -> None:
    client = _signed_in(world)
    first, second = world.case_ids[:2]
    case = world.cases.get(first)
    page = client.get(f"/cases/{first}").text
    assert '<video id="clip" controls' in page and f'src="/cases/{first}/evidence/clip"' in page
    for name in ("original/first_seen", "annotated/first_seen", "original/after_dwell", "annotated/after_dwell"):
        assert f'src="/cases/{first}/evidence/{name}"' in page
    assert page.index("首次发现") < page.index("超时停留")  # key frames in capture order
    assert "清单哈希与立案记录一致" in page
    assert "&#34;event_id&#34;: &#34;" + case.event_id in page  # the manifest, pretty-printed
    assert "自动识别" in page  # the pipeline's creation entry in the history
    assert f'href="/cases/{second}" data-key="j"' in page
    assert 'data-key="k"' not in page  # the oldest case has no previous one
    assert _access_log(world)[-1] == ("rev", case.manifest_key)


def test_case_page_shows_the_plate_as_read_beside_the_party(world: World) -> None:
    builder = EvidenceBuilder(world.store, {"name": "m", "version": "1", "sha256": "ab" * 32}, {})
    crop = encode_jpeg(np.full((32, 128, 3), (30, 190, 240), np.uint8))
    case_id = raise_case(world.cases, builder, NOW - timedelta(minutes=5), plate="沪D·62819", plate_crop=crop)
    client = _signed_in(world)
    page = client.get(f"/cases/{case_id}").text
    assert "沪D·62819" in page
    assert f'<img class="plate" src="/cases/{case_id}/evidence/plate" alt="号牌识别图像">' in page
    assert client.get(f"/cases/{case_id}/evidence/plate").content == crop
    # A case without a plate says so and shows no plate image.
    assert "未识别" in client.get(f"/cases/{world.case_ids[0]}").text


def test_unknown_case_is_404(world: World) -> None:
    client = _signed_in(world)
    r = client.get("/cases/999", headers=HTML)
    assert r.status_code == 404
    assert "找不到该页面或案件" in r.text


def test_evidence_serves_ranges_and_logs_access(world: World) -> None:
    client = _signed_in(world)
    case = world.cases.get(world.case_ids[0])
    clip = world.store.get(case.evidence["clip"])

    full = client.get(f"/cases/{case.id}/evidence/clip")
    assert full.status_code == 200
    assert full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    assert full.content == clip

    part = client.get(f"/cases/{case.id}/evidence/clip", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(clip)}"
    assert part.content == clip[100:200]

    tail = client.get(f"/cases/{case.id}/evidence/clip", headers={"Range": "bytes=-50"})
    assert tail.content == clip[-50:]

    outside = client.get(f"/cases/{case.id}/evidence/clip", headers={"Range": f"bytes={len(clip)}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(clip)}"

    image = client.get(f"/cases/{case.id}/evidence/original/first_seen")
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content == world.store.get(case.evidence["original/first_seen"])

    logged = [key for user, key in _access_log(world) if user == "rev"]
    assert logged.count(case.evidence["clip"]) == 4  # every request, ranges included
    assert case.evidence["original/first_seen"] in logged


def test_evidence_only_by_name_of_the_case(world: World) -> None:
    client = _signed_in(world)
    first, second = world.case_ids[:2]
    other_key = world.cases.get(second).evidence["clip"]
    assert client.get(f"/cases/{first}/evidence/{other_key}").status_code == 404
    assert client.get(f"/cases/{first}/evidence/plate").status_code == 404
    assert client.get("/cases/999/evidence/clip").status_code == 404


def test_confirm_goes_to_the_next_case(world: World) -> None:
    client = _signed_in(world)
    first, second, third = world.case_ids
    r = _decide(client, second, "confirmed")
    assert (r.status_code, r.headers["location"]) == (303, f"/cases/{third}")
    assert world.cases.get(second).state == "confirmed"
    page = client.get(f"/cases/{third}").text
    assert f"案件 {second} 已确认" in page
    history = world.cases.history(second)
    assert [(h.to_state, h.actor) for h in history] == [("detected", "pipeline"), ("confirmed", "rev")]
    queue = client.get("/queue").text
    assert re.findall(r'<tr data-href="/cases/(\d+)">', queue) == [str(first), str(third)]
    # The decided case now says so instead of offering the decision again.
    assert "本案件已审核，状态：已确认" in client.get(f"/cases/{second}").text


def test_last_decision_returns_to_the_empty_queue(world: World) -> None:
    client = _signed_in(world)
    for case_id in world.case_ids[:-1]:
        _decide(client, case_id, "confirmed")
    r = _decide(client, world.case_ids[-1], "voided", "误检：纸箱")
    assert r.headers["location"] == "/queue"
    assert "队列已清空" in client.get("/queue").text


def test_void_needs_a_reason(world: World) -> None:
    client = _signed_in(world)
    case_id = world.case_ids[0]
    r = _decide(client, case_id, "voided", "   ")
    assert r.headers["location"] == f"/cases/{case_id}"
    assert "作废必须填写理由" in client.get(f"/cases/{case_id}").text
    assert world.cases.get(case_id).state == "detected"

    _decide(client, case_id, "voided", "车牌不清")
    assert world.cases.get(case_id).state == "voided"
    assert world.cases.history(case_id)[-1].reason == "车牌不清"


def test_decision_needs_the_session_csrf_token(world: World) -> None:
    client = _signed_in(world)
    case_id = world.case_ids[0]
    assert _decide(client, case_id, "confirmed", token="forged").status_code == 403
    other = _signed_in(world)
    assert _decide(client, case_id, "confirmed", token=_csrf(other.get("/queue").text)).status_code == 403
    assert world.cases.get(case_id).state == "detected"


def test_second_decision_on_a_case_is_refused(world: World) -> None:
    a, b = _signed_in(world), _signed_in(world)
    case_id = world.case_ids[0]
    token_b = _csrf(b.get(f"/cases/{case_id}").text)
    _decide(a, case_id, "confirmed")
    r = _decide(b, case_id, "voided", "重复", token=token_b)
    assert r.headers["location"] == f"/cases/{case_id}"
    assert "该案件已被审核" in b.get(f"/cases/{case_id}").text
    assert world.cases.get(case_id).state == "confirmed"


def test_ops_may_view_but_not_decide(world: World) -> None:
    client = _signed_in(world, "ops")
    case_id = world.case_ids[0]
    page = client.get(f"/cases/{case_id}").text
    assert "您的角色只能查看，不能审核" in page
    assert 'action="/cases/' not in page
    assert client.get(f"/cases/{case_id}/evidence/clip").status_code == 200
    r = _decide(client, case_id, "confirmed", token=_csrf(page))
    assert r.status_code == 403
    assert world.cases.get(case_id).state == "detected"


def test_deactivated_user_is_signed_out(world: World) -> None:
    client = _signed_in(world)
    with Session(create_engine(world.db_url)) as s:
        s.get(User, s.scalar(select(User.id).where(User.username == "rev"))).active = False
        s.commit()
    assert client.get("/queue").status_code == 303
    assert client.get(f"/cases/{world.case_ids[0]}/evidence/clip").status_code == 401


def test_logout(world: World) -> None:
    client = _signed_in(world)
    token = _csrf(client.get("/queue").text)
    assert client.post("/logout", data={"csrf_token": token}).headers["location"] == "/login"
    assert client.get("/queue").status_code == 303


def test_assets_are_local_and_headers_strict(world: World) -> None:
    client = _client(world)
    page = client.get("/login")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert ref.startswith(("/", "#", "data:")), ref
    for asset in ("/static/review.css", "/static/review.js"):
        assert client.get(asset).status_code == 200
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_services_refuse_a_weak_secret(world: World) -> None:
    with pytest.raises(ValueError, match="secret_key"):
        replace(world.services, secret_key=SECRET[:8])


def test_browser_errors_are_pages_and_api_errors_json(world: World) -> None:
    client = _signed_in(world)
    missing = client.get("/no/such/page", headers=HTML)
    assert missing.status_code == 404 and "找不到该页面或案件" in missing.text
    assert client.get("/no/such/page").json() == {"detail": "Not Found"}
    assert _client(world).get("/cases/1/evidence/clip", headers=HTML).status_code == 401
    # Signed in already: the sign-in page sends the user on.
    assert client.get("/login?next=/cases/2").headers["location"] == "/cases/2"


def test_push_router_keeps_its_json_answers_on_the_ui_app(world: World) -> None:
    app = create_app(world.services)
    app.include_router(
        make_push_router(gateways=[], point_ids=["JDZ-001"], max_frame_bytes=10_000, publish=lambda f: None)
    )
    r = TestClient(app).post(
        "/api/v1/points/JDZ-001/frames", content=b"\xff\xd8", headers={"Content-Type": "image/jpeg"}
    )
    assert (r.status_code, r.json()["detail"]) == (401, "missing or unknown bearer token")
    assert r.headers["WWW-Authenticate"] == "Bearer"
