"""Stored XSS and SQL injection payloads in every text field the review UI shows render inert, and every
answer carries the security headers (a CSP without inline script, no framing, no sniffing).

The payloads go in the way real data does: case rows through `CaseService.open_case` (with evidence
built by the real builder, so the manifest shown on the case page carries them too), display names
through `UserService.add_user`, void reasons through the case page's own form, point names through the
points registry; then the pages are fetched with FastAPI's TestClient and parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from review_ui_seed import NOW, PASSWORD, POINT, SECRET, scene
from sqlalchemy import func, select

from cases import NewCase
from cases.db import make_engine, session_factory, upgrade
from cases.models import Case, User
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from feixian.domain import Category
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.evidence import EvidenceBuilder
from review_ui.app import ReviewServices, create_app

XSS = [
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=//evil.example></iframe>",
    "<style>body{display:none}</style>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",  # must not be unescaped into markup either
    "{{ 7*7 }}{% raw %}${7*7}<b>b</b>",  # template syntax in data is text
]
SQLI = [
    "' OR '1'='1",
    "'; DROP TABLE cases; --",
    '"; DELETE FROM users; --',
    "1' UNION SELECT password_hash FROM users --",
    "沪A12345'); UPDATE users SET role='admin' --",
]
PAYLOADS = XSS + SQLI
CASE_FIELDS = ("party", "subtype", "category", "zone_id", "device_id")
TAGS_ALLOWED_SCRIPT = {"/static/review.js"}
HTML = {"Accept": "text/html"}


@dataclass(frozen=True)
class Label:
    name: str
    town: str
    zones: tuple = ()


class Inert(HTMLParser):
    """Collects what would run or load in a browser: scripts, handlers, frames, styles, script URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.active: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src") not in TAGS_ALLOWED_SCRIPT:
            self.active.append(f"<script src={a.get('src')!r}>")
        if tag in ("iframe", "svg", "style", "object", "embed", "base"):
            self.active.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.active.append(f"{tag} {name}=")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.active.append(f"{tag} {name}={value}")


def active_content(page: str) -> list[str]:
    parser = Inert()
    parser.feed(page)
    return parser.active


def assert_escaped(page: str, payloads: list[str]) -> None:
    assert active_content(page) == []
    for p in payloads:
        assert str(escape(p)) in page, p  # shown, as text
        if "<" in p:
            assert p not in page, p  # never as markup


def assert_security_headers(response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "script-src" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("xss")
    url = f"sqlite:///{root / 'feixian.db'}"
    upgrade(url)
    sessions = session_factory(make_engine(url))
    store = LocalObjectStore(root / "evidence")
    cases, users = CaseService(sessions), UserService(sessions)
    record = evidence(store)
    ids = [
        cases.open_case(replace(record, event_id=f"xss-{i}", **dict.fromkeys(CASE_FIELDS, p)))[0].id
        for i, p in enumerate(PAYLOADS)
    ]
    # Display names hold up to 128 characters: the payloads spread over a few accounts.
    names = [""]
    for p in PAYLOADS:
        if len(names[-1]) + len(p) + 1 > 128:
            names.append("")
        names[-1] = f"{names[-1]} {p}".strip()
    accounts = [users.add_user(f"rev{k}", PASSWORD, "reviewer", name).username for k, name in enumerate(names)]
    points = {POINT.id: Label(name=XSS[0], town=SQLI[0])}
    services = ReviewServices(
        cases=cases, users=users, store=store, secret_key=SECRET, points=points, clock=lambda: NOW
    )
    return services, sessions, ids, accounts


def evidence(store: LocalObjectStore) -> NewCase:
    """One evidence bundle built for real, its manifest carrying every payload (the plate, the rule's
    details); each case reuses it under its own event id."""
    started = NOW - timedelta(hours=3)
    frames = scene(started, 12)
    stall = ObjectSeen((120.0, 150.0, 200.0, 220.0), "stall", 0.8, track_id=1)
    event = ViolationEvent(
        point_id=POINT.id,
        category=Category.OCCUPATION,
        subtype="stall",
        zone_id="front",
        started_at=started,
        triggered_at=started + timedelta(seconds=2),
        ended_at=None,
        objects=[stall],
        keyframes=[KeyFrame("first_seen", frames[0], [stall]), KeyFrame("after_dwell", frames[10], [stall])],
        plate=PAYLOADS[0],
        details={"notes": PAYLOADS},
    )
    builder = EvidenceBuilder(store, {"name": "m", "version": "1", "sha256": "ab" * 32}, {"conf": 0.3})
    return builder.build(event, POINT, frames, 5.0).to_new_case(event, POINT)


def signed_in(services: ReviewServices, username: str) -> TestClient:
    client = TestClient(create_app(services), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    return client


def test_payloads_round_trip_unchanged_and_the_tables_survive(world):
    services, sessions, ids, accounts = world
    for case_id, payload in zip(ids, PAYLOADS, strict=True):
        case = services.cases.get(case_id)
        assert [getattr(case, f) for f in CASE_FIELDS] == [payload] * len(CASE_FIELDS)
    with sessions() as s:
        assert s.scalar(select(func.count(Case.id))) == len(PAYLOADS)
        assert set(s.scalars(select(User.role))) == {"reviewer"}
        assert len(accounts) == s.scalar(select(func.count(User.id)))


def test_queue_and_case_pages_render_every_payload_inert(world):
    services, _, ids, accounts = world
    client = signed_in(services, accounts[0])
    queue = client.get("/queue")
    assert queue.status_code == 200
    assert_security_headers(queue)
    assert_escaped(queue.text, PAYLOADS)
    for case_id, payload in zip(ids, PAYLOADS, strict=True):
        page = client.get(f"/cases/{case_id}")
        assert page.status_code == 200
        assert_security_headers(page)
        assert_escaped(page.text, [payload, XSS[0], SQLI[0]])


def test_void_reasons_render_inert_in_the_history(world):
    services, _, ids, accounts = world
    # The reviewer who opened every case above holds their claims: only they may decide them now.
    client = signed_in(services, accounts[0])
    for case_id, payload in list(zip(ids, PAYLOADS, strict=True))[-4:]:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(f"/cases/{case_id}").text)[1]
        data = {"decision": "voided", "reason": payload, "csrf_token": token}
        assert client.post(f"/cases/{case_id}/decision", data=data).status_code == 303
        page = client.get(f"/cases/{case_id}").text
        assert_escaped(page, [payload])
        assert services.cases.history(case_id)[-1].reason == payload


def test_display_names_render_inert(world):
    services, _, _, accounts = world
    shown = []
    for username in accounts:
        page = signed_in(services, username).get("/queue").text
        name = services.users.get_user(username).display_name
        assert_escaped(page, [name])
        shown.append(name)
    assert all(any(p in name for name in shown) for p in PAYLOADS)


def test_reflected_input_is_inert_too(world):
    services, _, _, accounts = world
    anonymous = TestClient(create_app(services), follow_redirects=False)
    reviewer = signed_in(services, accounts[0])
    token = re.search(r'name="csrf_token" value="([^"]+)"', anonymous.get("/login").text)[1]
    for payload in ("<script>alert(1)</script>", '"><svg onload=alert(1)>', "' OR '1'='1"):
        pages = [
            anonymous.get("/login", params={"next": "/" + payload}),
            anonymous.get("/login", params={"next": payload, "lang": payload}),
            reviewer.get("/queue", params={"x": payload}),
            reviewer.get(f"/cases/99999?{payload}", headers=HTML),
            reviewer.get(f"/cases/99999/evidence/{payload}", headers=HTML),
        ]
        for r in pages:
            assert r.status_code in (200, 404)
            assert_security_headers(r)
            assert active_content(r.text) == []
            assert payload not in r.text
    # A wrong sign-in echoes nothing of what was typed (one try: each costs a PBKDF2 run).
    failed = anonymous.post("/login", data={"username": "<b>x</b>", "password": "' OR '1'='1", "csrf_token": token})
    assert failed.status_code == 401 and "<b>x</b>" not in failed.text and "OR '1'" not in failed.text


def test_templates_have_no_inline_script_style_or_handlers():
    # The CSP allows scripts and styles from /static only: inline code would be blocked, so none exists.
    for template in (Path(__file__).resolve().parents[1] / "review_ui" / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", text), template.name
