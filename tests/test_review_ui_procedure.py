"""The penalty procedure driven from the review UI (issue 27 item 3): the case page's procedure panel offers exactly
the moves the state machine gives the signed-in role; each move made through it is `feixian cases move`'s, recorded
with actor, reason and the facts it set in a chain `feixian evidence verify` finds intact; a refused move shows its
refusal on the page (409, or 422 for a form that does not parse) and changes nothing. The legal work queue lists the
open cases past the evidence review by time left; the notice states the facts, the proposed fine, its legal basis,
the statement window and the notice's place in the hash chain."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_ui_seed import NOW, POINT, World, make_world
from test_role_matrix import USERS, client_for, csrf

from cases.db import make_engine, session_factory
from cases.lifecycle import State
from cases.procedure import Move, PartyKind
from cases.publicity import PublicitySettings
from cases.service import CaseService
from cases.sla import SlaClock
from cases.verify import verify_case
from cases.workdays import WorkCalendar
from review_ui.app import create_app

S = State


class Clock:
    """The app's and the case service's clock, moved by the test (statement windows are days long); it starts an
    hour after the seeded cases were discovered, on a Monday morning in Shanghai."""

    def __init__(self) -> None:
        self.now = NOW + timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(tmp_path: Path, clock: Clock) -> World:
    world = make_world(tmp_path, n_cases=6)
    for role, name in USERS.items():
        if name not in ("rev", "ops"):  # the seed made those two
            world.users.add_user(name, "review-pass-1", role)
    cases = CaseService(session_factory(make_engine(world.db_url)), clock=clock)
    services = replace(world.services, cases=cases, clock=clock, sla=SlaClock(WorkCalendar(), 3, 24.0))
    return replace(world, services=services, cases=cases)


@pytest.fixture
def app(world: World):
    return create_app(world.services)


@pytest.fixture
def signed_in(app):
    """A signed-in client per role, made on first use (signing in is slow on purpose)."""
    made: dict[str, TestClient] = {}

    def client(role: str) -> TestClient:
        if role not in made:
            made[role] = client_for(app, role)
        return made[role]

    return client


def confirmed(world: World, i: int) -> int:
    case_id = world.case_ids[i]
    world.cases.transition(case_id, S.CONFIRMED, "rev")
    return case_id


def offered(client: TestClient, case_id: int) -> set[str]:
    return set(re.findall(r'id="move-([a-z_]+)"', client.get(f"/cases/{case_id}").text))


def move(client: TestClient, case_id: int, to: str, **fields: str):
    form = {"to": to, "csrf_token": csrf(client)} | fields
    return client.post(f"/cases/{case_id}/move", data=form, follow_redirects=False)


def moved(world: World, client: TestClient, case_id: int, to: str, actor: str, **fields: str) -> dict:
    """Make a move through the UI that must succeed; its transition is the chain's last, with its actor, reason and
    facts, and the case passes `feixian evidence verify`'s checks."""
    before = len(world.cases.history(case_id))
    r = move(client, case_id, to, **fields)
    refusal = re.search(r"role=\"alert\">(.*?)</p>", r.text, re.S)
    assert (r.status_code, r.headers.get("location")) == (303, f"/cases/{case_id}"), refusal and refusal[1]
    history = world.cases.history(case_id)
    last = history[-1]
    assert len(history) == before + 1
    assert (last.to_state, last.actor, last.reason) == (to, actor, fields.get("reason") or None)
    report = verify_case(world.cases.sessions, world.store, case_id)
    assert report.ok, report.problems
    return last.details or {}


PANEL = {
    # (state, role) -> the moves the panel offers
    (S.CONFIRMED, "legal"): {"voided", "warned", "filed"},
    (S.CONFIRMED, "supervisor"): {"voided", "warned", "filed"},
    (S.CONFIRMED, "reviewer"): set(),
    (S.CONFIRMED, "ops"): set(),
    (S.CONFIRMED, "admin"): set(),
    (S.NOTIFIED, "legal"): {"statement", "decided"},
    (S.NOTIFIED, "reviewer"): {"statement"},
    (S.NOTIFIED, "admin"): set(),
}


def test_the_panel_offers_only_the_moves_the_role_may_take(world: World, signed_in) -> None:
    at_confirmed, at_notified = confirmed(world, 0), confirmed(world, 1)
    world.cases.transition(at_notified, S.FILED, "wang")
    world.cases.transition(at_notified, S.NOTIFIED, "wang", move=_fine(200))
    for (state, role), moves in PANEL.items():
        case_id = at_confirmed if state == S.CONFIRMED else at_notified
        assert offered(signed_in(role), case_id) == moves, (state, role)
    page = signed_in("reviewer").get(f"/cases/{at_confirmed}").text
    assert 'id="no-moves"' in page and "您的角色在此环节无可办事项" in page
    # A detected case is decided by its evidence review card: the panel offers nothing there.
    assert offered(signed_in("supervisor"), world.case_ids[2]) == set()
    # The fields follow the procedure: a warning shows its recheck date, a decision from the window its waiver.
    legal = signed_in("legal")
    page = legal.get(f"/cases/{at_confirmed}").text
    assert "责令改正期限将至" in page and 'name="fine"' in _form(page, "filed")
    assert 'name="waived"' in _form(legal.get(f"/cases/{at_notified}").text, "decided")


def _form(page: str, target: str) -> str:
    return re.search(rf'<form[^>]*id="move-{target}".*?</form>', page, re.S)[0]


def _fine(yuan: int, kind: str | None = None) -> Move:
    return Move(fine_yuan=yuan, party_kind=PartyKind(kind) if kind else None)


def test_every_path_through_the_ui_writes_a_verified_chain(world: World, signed_in, clock: Clock) -> None:
    legal, rev, zhou = signed_in("legal"), signed_in("reviewer"), signed_in("supervisor")
    # Filed with a minor fine, notified, the party's statement recorded, decided once the window closed, then on
    # to the end; the decision may lower the fine, never raise it.
    case_id = confirmed(world, 0)
    assert moved(world, legal, case_id, "filed", "wang", fine="200", party_kind="person") == {
        "fine_yuan": 200,
        "party_kind": "person",
    }
    notice = moved(world, legal, case_id, "notified", "wang")
    due = world.cases.get(case_id).statement_due_at
    assert notice == {"statement_due_at": due.isoformat()}
    moved(world, rev, case_id, "statement", "rev", reason="当事人称已整改")
    clock.now = due
    assert moved(world, legal, case_id, "decided", "wang", fine="150") == {"fine_yuan": 150}
    for to, client, actor in [("delivered", rev, "rev"), ("published", legal, "wang"), ("executed", zhou, "zhou")]:
        moved(world, client, case_id, to, actor)
    moved(world, zhou, case_id, "closed", "zhou")
    assert world.cases.get(case_id).state == S.CLOSED

    # A major fine goes through legal review before the notice; the party waives its window and is decided at once.
    major = confirmed(world, 1)
    moved(world, legal, major, "filed", "wang", fine="60000", party_kind="organisation")
    moved(world, legal, major, "legal_review", "wang")
    moved(world, legal, major, "notified", "wang")
    assert moved(world, legal, major, "decided", "wang", reason="当事人书面放弃", waived="1") == {
        "statement_waived": True
    }

    # A first minor violation: warned with its recheck date, then closed as corrected.
    warned = confirmed(world, 2)
    details = moved(world, legal, warned, "warned", "wang")
    assert details == {"recheck_due_at": world.cases.get(warned).recheck_due_at.isoformat()}
    moved(world, rev, warned, "closed", "rev", reason="复查已改正")

    # The legal review after the evidence review may still void, with its reason.
    moved(world, zhou, confirmed(world, 3), "voided", "zhou", reason="当事人身份无法确定")


def test_a_refused_move_shows_why_and_changes_nothing(world: World, signed_in) -> None:
    legal = signed_in("legal")
    case_id = confirmed(world, 0)
    moved(world, legal, case_id, "filed", "wang", fine="300")
    moved(world, legal, case_id, "notified", "wang")

    def refused(status: int, to: str, *texts: str, **fields: str) -> None:
        before = (world.cases.get(case_id).state, len(world.cases.history(case_id)))
        r = move(legal, case_id, to, **fields)
        assert r.status_code == status, r.text[:300]
        alert = re.search(r'<p class="error refusal" role="alert">(.*?)</p>', r.text, re.S)[1]
        for text in texts:
            assert text in alert
        assert (world.cases.get(case_id).state, len(world.cases.history(case_id))) == before
        assert verify_case(world.cases.sessions, world.store, case_id).ok

    # Inside the statement window, without the party's waiver: refused, zh-CN first, English second.
    refused(409, "decided", "陈述申辩期至", "未届满", "the statement window runs until", reason="决定")
    # Deciding straight from the notice needs a reason; a move the lifecycle has no edge for is refused.
    refused(409, "decided", "须写明理由", "needs a reason", waived="1")
    refused(409, "executed", "不能从 notified 转到 executed")
    # A form that does not parse never reaches the case.
    refused(422, "decided", "罚款须为 0 至", fine="12.5", reason="决定", waived="1")
    refused(422, "decided", "罚款须为 0 至", fine="-1", reason="决定", waived="1")
    refused(422, "nowhere", "未知的目标环节")
    # A decision heavier than the notice proposed is refused by the procedure.
    refused(409, "decided", "陈述申辩不得加重处罚", fine="301", reason="决定", waived="1")
    # In English the page frames the same refusal in English.
    legal.get(f"/cases/{case_id}?lang=en")
    refused(409, "decided", "Refused: ", "the statement window runs until", reason="decision")


def test_the_move_route_keeps_to_its_roles_and_the_evidence_review(world: World, signed_in, app) -> None:
    case_id = confirmed(world, 0)
    detected = world.case_ids[1]
    for role in ("ops", "admin"):
        assert move(signed_in(role), case_id, "filed").status_code == 403
    # A reviewer may take no step from confirmed: the lifecycle's refusal is a 403, not a page to retry.
    assert move(signed_in("reviewer"), case_id, "filed").status_code == 403
    # The evidence review is never taken around its card and its claim.
    r = move(signed_in("supervisor"), detected, "confirmed")
    assert r.status_code == 409 and "待审核案件须先在审核结论中确认或作废" in r.text
    # Without the CSRF token nothing moves.
    r = signed_in("legal").post(f"/cases/{case_id}/move", data={"to": "filed"}, follow_redirects=False)
    assert r.status_code == 403
    assert [world.cases.get(i).state for i in (case_id, detected)] == [S.CONFIRMED, S.DETECTED]
    assert move(TestClient(app), case_id, "filed").headers["location"].startswith("/login")


def test_the_work_queue_lists_open_cases_by_time_left(world: World, signed_in, clock: Clock) -> None:
    ids = world.case_ids
    for i in range(5):
        confirmed(world, i)
    world.cases.transition(ids[1], S.FILED, "wang")
    world.cases.transition(ids[1], S.NOTIFIED, "wang", move=_fine(200))  # the party's window adds to its time
    world.cases.transition(ids[2], S.VOIDED, "wang", reason="重复")
    world.cases.transition(ids[3], S.WARNED, "wang")
    legal = signed_in("legal")

    def rows() -> list[tuple[int, str, str]]:
        """(case, due time, mark) of each row, in the page's order."""
        page = legal.get("/work").text
        found = re.findall(r'<tr data-href="/cases/\d+" data-case="(\d+)" data-due="([^"]+)" class="([^"]*)"', page)
        return [(int(i), due, mark) for i, due, mark in found]

    # Discovered on Monday: due at the end of Thursday. On Thursday morning the cases waiting on the bureau are at
    # risk; on Friday they are overdue. Those waiting on their party (the statement window, the order to correct)
    # have that time added. Voided and still detected cases are no legal work.
    clock.now += timedelta(days=3)
    thursday = rows()
    assert {i for i, _, _ in thursday} == {ids[0], ids[1], ids[3], ids[4]}
    assert [due for _, due, _ in thursday] == sorted(due for _, due, _ in thursday)
    assert {i: mark for i, _, mark in thursday} == {ids[0]: "at-risk", ids[4]: "at-risk", ids[1]: "", ids[3]: ""}
    clock.now += timedelta(days=1)
    friday = {i: mark for i, _, mark in rows()}
    assert friday == {ids[0]: "overdue", ids[4]: "overdue", ids[1]: "", ids[3]: ""}
    assert "超时" in legal.get("/work").text
    for role, status in [("reviewer", 403), ("ops", 403), ("admin", 403), ("supervisor", 200)]:
        assert signed_in(role).get("/work").status_code == status
    assert 'href="/work"' in signed_in("supervisor").get("/queue").text
    assert 'href="/work"' not in signed_in("reviewer").get("/queue").text


def test_the_notice_states_what_the_party_must_know(world: World, signed_in, clock: Clock) -> None:
    legal = signed_in("legal")
    # The notice states the facts as the review corrected them.
    world.cases.correct(world.case_ids[0], "plate", "沪D12345", "rev")
    world.cases.correct(world.case_ids[0], "subtype", "goods", "rev")
    case_id = confirmed(world, 0)
    assert legal.get(f"/cases/{case_id}/notice").status_code == 409
    assert legal.get("/cases/99999/notice").status_code == 404
    moved(world, legal, case_id, "filed", "wang", fine="200", party_kind="person")
    moved(world, legal, case_id, "notified", "wang")
    case, notice = world.cases.get(case_id), world.cases.history(case_id)[-1]
    page = legal.get(f"/cases/{case_id}/notice")
    assert page.status_code == 200
    text = page.text
    basis = PublicitySettings().legal_basis["occupation"]
    for expected in [
        "行政处罚事先告知书",
        POINT.name,
        POINT.town,
        "乱堆物料",
        "沪D12345",
        "罚款人民币 200 元",
        basis,
        PublicitySettings().agency,
        "第四十四条",
        _local(case.triggered_at),
        _local(case.statement_due_at),
        notice.hash,
        case.manifest_sha256,
    ]:
        assert expected in text, expected
    assert "听证" not in text  # a minor fine: no hearing right to state
    frames = re.findall(r'<img src="(/cases/\d+/evidence/original/[^"]+)"', text)
    assert len(frames) == 2 and all(legal.get(f).status_code == 200 for f in frames)
    assert 'href="/static/notice.css"' in text and not re.search(r'(src|href)="(https?:)?//', text)
    # The later decision lowers the fine: the notice still says what was proposed.
    clock.now = case.statement_due_at
    moved(world, legal, case_id, "decided", "wang", fine="100", reason="陈述申辩期届满，当事人未提出")
    assert "罚款人民币 200 元" in legal.get(f"/cases/{case_id}/notice").text
    english = legal.get(f"/cases/{case_id}/notice?lang=en").text
    assert "Advance notice of an administrative penalty" in english and "a fine of 200 yuan" in english
    assert 'id="notice-link"' in legal.get(f"/cases/{case_id}").text
    for role, status in [("reviewer", 200), ("supervisor", 200), ("ops", 403), ("admin", 403)]:
        assert signed_in(role).get(f"/cases/{case_id}/notice").status_code == status


def test_a_major_fine_notice_states_the_hearing_right(world: World, signed_in) -> None:
    legal = signed_in("legal")
    case_id = confirmed(world, 0)
    moved(world, legal, case_id, "filed", "wang", fine="8000", party_kind="person")
    moved(world, legal, case_id, "legal_review", "wang")
    moved(world, legal, case_id, "notified", "wang")
    assert "要求听证" in legal.get(f"/cases/{case_id}/notice").text


def _local(at: datetime) -> str:
    return at.astimezone(WorkCalendar().tz).strftime("%Y-%m-%d %H:%M:%S")
