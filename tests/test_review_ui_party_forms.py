"""The party forms (issue 27 item 2: parties managed in the UI as well as imported): legal reviewers and supervisors
add and edit merchants and vehicles, checked by the CSV import's rules, with a CSRF token; each addition and edit is
recorded with actor, time and the fields it changed; reviewers, ops and admin may not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_ui_seed import NOW, World, make_staffed_world
from sqlalchemy import func, select
from test_ops_page import sign_in
from test_review_ui_parties import form_token

from cases.db import make_engine, session_factory
from cases.models import Party, PartyChange, PartyZone
from cases.parties import PartyService
from cases.party_import import import_parties, read_rows
from cases.party_settings import PartySettings
from review_ui.app import create_app

MERCHANT = {
    "kind": "merchant",
    "name": "张三",
    "shop": "张记水果",
    "licence_no": "91310115MA1K4AB30P",
    "contact": "13800000001",
    "point_id": "JDZ-001",
    "zones": "front",
}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_staffed_world(tmp_path)


@pytest.fixture
def sessions(world: World):
    sessions = session_factory(make_engine(world.db_url))
    with sessions() as s:
        s.add(Party(kind="vehicle", name="浦东运输", company="浦东运输", plate="沪D62819"))
        s.commit()
    return sessions


@pytest.fixture
def client(world: World, sessions) -> TestClient:
    return TestClient(create_app(replace(world.services, parties=PartyService(sessions, PartySettings()))))


def post(client: TestClient, url: str, form: dict, page: str) -> object:
    return client.post(url, data=form | {"csrf_token": form_token(client.get(page).text)}, follow_redirects=False)


def changes(sessions, party_id: int) -> list[tuple[str, str, dict]]:
    with sessions() as s:
        query = select(PartyChange).where(PartyChange.party_id == party_id).order_by(PartyChange.id)
        return [(c.actor, c.action, c.changes, c.at) for c in s.scalars(query)]


def test_a_legal_reviewer_adds_a_merchant_and_the_cases_of_its_zone_are_bound(client, world, sessions) -> None:
    sign_in(client, "wang")
    assert 'href="/parties/new?kind=merchant"' in client.get("/parties").text
    form = client.get("/parties/new?kind=merchant")
    assert form.status_code == 200 and "登记商户" in form.text and "front" in form.text  # the point's zones listed
    r = post(client, "/parties", MERCHANT, "/parties/new?kind=merchant")
    assert r.status_code == 303 and r.headers["location"] == "/parties/2"
    with sessions() as s:
        shop = s.get(Party, 2)
        assert (shop.kind, shop.shop, shop.contact) == ("merchant", "张记水果", "13800000001")
        assert s.scalars(select(PartyZone.zone_id).where(PartyZone.party_id == 2)).all() == ["front"]
    # The one merchant of the zone: the unbound cases there are now its.
    assert {world.cases.get(i).party_id for i in world.case_ids} == {2}
    [(actor, action, changed, at)] = changes(sessions, 2)
    assert (actor, action, at) == ("wang", "created", NOW)
    assert changed["shop"] == [None, "张记水果"] and changed["zones"] == [None, ["JDZ-001/front"]]
    page = client.get("/parties/2")
    assert "已保存" in page.text and "新登记" in page.text and "wang" in page.text and "博乐路沙霞路口" in page.text


def test_a_supervisor_edits_a_vehicle_and_the_change_is_recorded(client, sessions) -> None:
    sign_in(client, "zhou")
    form = client.get("/parties/1/edit")
    assert form.status_code == 200 and 'value="沪D62819"' in form.text and "浦东运输" in form.text
    edit = {"plate": "沪D62819", "company": "浦东渣土运输公司", "licence_no": "", "contact": "上海市浦东新区某路1号"}
    r = post(client, "/parties/1", edit, "/parties/1/edit")
    assert r.status_code == 303 and r.headers["location"] == "/parties/1"
    [(actor, action, changed, _)] = changes(sessions, 1)
    assert (actor, action) == ("zhou", "updated")
    assert changed == {
        "name": ["浦东运输", "浦东渣土运输公司"],
        "company": ["浦东运输", "浦东渣土运输公司"],
        "contact": [None, "上海市浦东新区某路1号"],
    }
    # The same fields again change nothing, and nothing more is recorded.
    assert post(client, "/parties/1", edit, "/parties/1/edit").status_code == 303
    assert len(changes(sessions, 1)) == 1
    english = client.get("/parties/1?lang=en").text
    assert "Changes to the record" in english and "edited" in english and "Transport company: 浦东运输 →" in english


def test_a_refused_form_names_each_field_and_stores_nothing(client, sessions) -> None:
    sign_in(client, "wang")
    bad = MERCHANT | {"shop": " ", "licence_no": "123", "zones": "front;back"}
    r = post(client, "/parties", bad, "/parties/new?kind=merchant")
    assert r.status_code == 400 and "未保存" in r.text
    assert "必填 / required" in r.text  # the shop
    assert "not a licence number or credit code" in r.text
    assert 'value="front;back"' in r.text  # what was typed stays in the form
    r = post(client, "/parties", MERCHANT | {"zones": "front;back"}, "/parties/new?kind=merchant")
    assert r.status_code == 400 and "没有区域 [&#39;back&#39;] / point JDZ-001 has no zone" in r.text
    vehicle = {"kind": "vehicle", "plate": "沪D·62819", "company": "另一公司", "licence_no": "", "contact": ""}
    r = post(client, "/parties", vehicle, "/parties/new?kind=vehicle")
    assert r.status_code == 400 and "已登记为当事人 1 / already on record as party 1" in r.text
    r = post(client, "/parties/1", {"plate": "X1", "company": ""}, "/parties/1/edit")
    assert r.status_code == 400 and "车牌格式不对" in r.text and "Not saved" not in r.text
    assert "Not saved" in post(client, "/parties/1?lang=en", {"plate": "X1", "company": ""}, "/parties/1/edit").text
    with sessions() as s:
        assert s.scalar(select(func.count(Party.id))) == 1 and s.get(Party, 1).company == "浦东运输"
        assert s.scalar(select(func.count(PartyChange.id))) == 0


@pytest.mark.parametrize("username", ["rev", "ops", "root"])
def test_only_legal_reviewers_and_supervisors_keep_the_records(client, sessions, username: str) -> None:
    sign_in(client, username)
    token = form_token(client.get("/queue").text)
    assert client.get("/parties/new").status_code == 403
    assert client.get("/parties/1/edit").status_code == 403
    assert client.post("/parties", data=MERCHANT | {"csrf_token": token}).status_code == 403
    edit = {"plate": "沪D62819", "company": "改名", "csrf_token": token}
    assert client.post("/parties/1", data=edit).status_code == 403
    if username == "rev":  # reviewers still see the parties, without the forms' links
        page = client.get("/parties/1").text
        assert "/parties/1/edit" not in page and "/parties/new" not in client.get("/parties").text
    with sessions() as s:
        assert s.scalar(select(func.count(Party.id))) == 1 and s.get(Party, 1).company == "浦东运输"


def test_a_form_without_its_csrf_token_is_refused(client, sessions) -> None:
    sign_in(client, "wang")
    assert client.post("/parties", data=MERCHANT).status_code == 403
    assert client.post("/parties/1", data={"plate": "沪D62819", "company": "改名"}).status_code == 403
    assert client.get("/parties/9/edit").status_code == 404
    with sessions() as s:
        assert s.scalar(select(func.count(Party.id))) == 1 and s.get(Party, 1).company == "浦东运输"


def test_the_csv_import_records_its_changes_too(sessions) -> None:
    text = "plate,company,licence_no,contact\n沪D62819,浦东渣土运输公司,,\n沪E12345,嘉定运输公司,,\n"
    with sessions() as s:
        import_parties(s, PartyService(sessions, PartySettings()), read_rows("vehicle", text, None), "import:ops", NOW)
        s.commit()
    assert [(a, action) for a, action, _, _ in changes(sessions, 1)] == [("import:ops", "updated")]
    assert [(a, action) for a, action, _, _ in changes(sessions, 2)] == [("import:ops", "created")]
