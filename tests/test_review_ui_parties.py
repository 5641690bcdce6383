"""The parties pages: for reviewers, legal reviewers and supervisors, zh-CN first; each party with its risk grade,
and a party's page with its earlier cases and whether its next listed violation would be let off with a warning."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_ui_seed import World, make_staffed_world
from test_ops_page import sign_in

from cases.db import make_engine, session_factory
from cases.models import Case, Party, PartyZone
from cases.parties import PartyService
from cases.party_settings import PartySettings
from review_ui.app import create_app


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_staffed_world(tmp_path)


@pytest.fixture
def client(world: World) -> TestClient:
    sessions = session_factory(make_engine(world.db_url))
    with sessions() as s:
        shop = Party(
            kind="merchant", name="张三", shop="张记水果", licence_no="91310115MA1K4AB30P", contact="13800000001"
        )
        s.add_all([shop, Party(kind="vehicle", name="浦东运输", company="浦东运输", plate="沪D62819")])
        s.flush()
        s.add(PartyZone(party_id=shop.id, point_id="JDZ-001", zone_id="front"))
        for case in s.query(Case):
            case.party_id = shop.id
        s.commit()
    services = replace(world.services, parties=PartyService(sessions, PartySettings()))
    return TestClient(create_app(services))


@pytest.mark.parametrize("username", ["rev", "wang", "zhou"])
def test_case_roles_see_the_parties_with_their_grades(client: TestClient, world: World, username: str) -> None:
    sign_in(client, username)
    page = client.get("/parties")
    assert page.status_code == 200 and page.text.index("张记水果") < page.text.index("沪D62819")
    assert "低风险" in page.text and "商户" in page.text
    shop = client.get("/parties/1")
    assert shop.status_code == 200 and "13800000001" in shop.text
    for case_id in world.case_ids:
        assert f'href="/cases/{case_id}"' in shop.text
    assert "待审核" in shop.text and "首违不罚" in shop.text  # detected cases are no violations yet
    assert "可适用首违不罚" in shop.text
    english = client.get("/parties/1?lang=en")
    assert "Earlier cases" in english.text and "Low risk" in english.text
    assert client.get("/parties/99").status_code == 404


@pytest.mark.parametrize("username", ["ops", "root"])
def test_ops_and_admin_are_refused(client: TestClient, username: str) -> None:
    sign_in(client, username)
    assert client.get("/parties").status_code == 403
    assert client.get("/parties/1").status_code == 403


def test_anonymous_is_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/parties/1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fparties%2F1"


def form_token(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="')[1].split('"')[0]


def test_a_reviewer_picks_the_party_of_a_case(client: TestClient, world: World) -> None:
    case_id = world.case_ids[0]
    sign_in(client, "rev")
    page = client.get(f"/cases/{case_id}/party")
    assert page.status_code == 200 and "张记水果" in page.text and "自动匹配" in page.text
    assert f'href="/cases/{case_id}/party"' in client.get(f"/cases/{case_id}").text
    r = client.post(f"/cases/{case_id}/party", data={"party_id": 1, "csrf_token": form_token(page.text)})
    assert r.status_code == 200 and "当事人已确认" in r.text
    assert world.cases.get(case_id).party_confirmed_by == "rev"
    r = client.post(f"/cases/{case_id}/party", data={"party_id": 99, "csrf_token": form_token(page.text)})
    assert "no party 99" in r.text  # back on the form, with the reason
    assert client.post(f"/cases/{case_id}/party", data={"party_id": 1}).status_code == 403  # no CSRF token


def test_ops_may_not_pick_a_party(client: TestClient, world: World) -> None:
    sign_in(client, "ops")
    token = form_token(client.get("/queue").text)
    assert client.get(f"/cases/{world.case_ids[0]}/party").status_code == 403
    r = client.post(f"/cases/{world.case_ids[0]}/party", data={"party_id": 1, "csrf_token": token})
    assert r.status_code == 403 and world.cases.get(world.case_ids[0]).party_confirmed_by is None
