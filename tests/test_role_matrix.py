"""The role matrix (issue 27 item 1): every route of the review UI, asked by every role and by an anonymous
visitor, gets exactly the answer the matrix allows. A route the app has and the matrix does not name fails the
test, so a new route cannot ship without its row.

Answers: 200 a page or file; 303 to /login (`LOGIN`) for a page asked without signing in; 401 for an evidence
file without signing in (a <video> cannot follow a sign-in page); 403 for a role the route refuses. A decision
a role may take answers 303 to the next case (`DONE`)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_ui_seed import PASSWORD, World, make_world
from starlette.routing import Mount, Route
from test_ops_page import VIEW

from cases.db import make_engine, session_factory
from cases.models import Party
from cases.parties import PartyService
from cases.party_settings import PartySettings
from review_ui.app import create_app

ACTORS = ("anonymous", "reviewer", "legal", "supervisor", "ops", "admin")
USERS = {"reviewer": "rev", "legal": "wang", "supervisor": "zhou", "ops": "ops", "admin": "root"}
LOGIN, DONE, ANSWER = "login", "done", "answer"
EVERYONE_SIGNED_IN = {"anonymous": LOGIN} | {role: 200 for role in USERS}
CASE_ROLES = {"anonymous": LOGIN, "reviewer": 200, "legal": 200, "supervisor": 200, "ops": 403, "admin": 403}
OPS_ROLES = {"anonymous": LOGIN, "reviewer": 403, "legal": 403, "supervisor": 403, "ops": 200, "admin": 200}
# Reviewers and supervisors take the evidence review; the lifecycle gives the others no edge out of `detected`.
DECIDERS = {"anonymous": LOGIN, "reviewer": DONE, "legal": 403, "supervisor": DONE, "ops": 403, "admin": 403}

# A pick of the party answers 303 back to the case page.
PICKERS_ANSWER = {"anonymous": LOGIN, "reviewer": 303, "legal": 303, "supervisor": 303, "ops": 403, "admin": 403}
# Legal reviewers and supervisors keep the parties' records; a saved form answers 303 to the party's page.
MANAGERS = {"anonymous": LOGIN, "reviewer": 403, "legal": 200, "supervisor": 200, "ops": 403, "admin": 403}
MANAGERS_SAVE = MANAGERS | {"legal": 303, "supervisor": 303}
# Each actor adds a vehicle of its own ({n}: the actor's place in ACTORS), so no plate is taken twice.
NEW_VEHICLE = {"kind": "vehicle", "plate": "沪A1234{n}", "company": "嘉定运输"}
ONLY = {"anonymous": LOGIN} | dict.fromkeys(USERS, 403)
SUPERVISOR_ONLY = ONLY | {"supervisor": 200}
PUBLISHERS = ONLY | {"legal": 200, "supervisor": 200}
ADMIN_ONLY = ONLY | {"admin": 200}
# An account form answers 303 back to the accounts page (the matrix's rev keeps its role and stays enabled).
ADMIN_SAVES = ONLY | {"admin": 303}
# The procedure's pages: the matrix's cases are never notified (their notice answers 409), and a move to `executed`
# is one the lifecycle refuses from any state they are in (409), after the role check (ops and admin: 403).
LEGAL_WORK = ONLY | {"legal": 200, "supervisor": 200}
STEP_TAKERS = ONLY | {"reviewer": 409, "legal": 409, "supervisor": 409}

# (method, route path) -> (the URL asked, form or None, expected answer per actor)
MATRIX = {
    ("GET", "/"): ("/", None, dict.fromkeys(ACTORS, 303)),
    ("GET", "/healthz"): ("/healthz", None, dict.fromkeys(ACTORS, 200)),
    ("GET", "/openapi.json"): ("/openapi.json", None, dict.fromkeys(ACTORS, 200)),  # the push API's, public
    ("GET", "/login"): ("/login", None, {"anonymous": 200} | dict.fromkeys(USERS, 303)),  # signed in: on to /queue
    ("POST", "/login"): ("/login", {"username": "nobody", "password": "wrong-pass"}, dict.fromkeys(ACTORS, 401)),
    ("POST", "/logout"): ("/logout", {}, dict.fromkeys(ACTORS, 303)),
    ("GET", "/queue"): ("/queue", None, EVERYONE_SIGNED_IN),
    ("GET", "/cases/{case_id}"): ("/cases/{case}", None, EVERYONE_SIGNED_IN),
    ("POST", "/cases/{case_id}/decision"): ("/cases/{case}/decision", {"decision": "confirmed"}, DECIDERS),
    # A correction answers 303 back to the case page (decided meanwhile: with a message); only its deciders correct.
    ("POST", "/cases/{case_id}/correction"): (
        "/cases/{case}/correction",
        {"field": "subtype", "value": "goods"},
        {"anonymous": LOGIN, "reviewer": 303, "legal": 403, "supervisor": 303, "ops": 403, "admin": 403},
    ),
    ("GET", "/cases/{case_id}/evidence/{name:path}"): (
        "/cases/{case}/evidence/manifest",
        None,
        {"anonymous": 401} | dict.fromkeys(USERS, 200),
    ),
    ("GET", "/parties"): ("/parties", None, CASE_ROLES),
    ("GET", "/parties/{party_id}"): ("/parties/{party}", None, CASE_ROLES),
    ("GET", "/cases/{case_id}/party"): ("/cases/{case}/party", None, CASE_ROLES),
    ("POST", "/cases/{case_id}/party"): ("/cases/{case}/party", {"party_id": "1"}, PICKERS_ANSWER),
    ("GET", "/parties/new"): ("/parties/new?kind=vehicle", None, MANAGERS),
    ("POST", "/parties"): ("/parties", NEW_VEHICLE, MANAGERS_SAVE),
    ("GET", "/parties/{party_id}/edit"): ("/parties/{party}/edit", None, MANAGERS),
    ("POST", "/parties/{party_id}"): ("/parties/{party}", {"plate": "沪D62819", "company": "浦东运输"}, MANAGERS_SAVE),
    ("GET", "/ops"): ("/ops", None, OPS_ROLES),
    ("GET", "/supervisor"): ("/supervisor", None, SUPERVISOR_ONLY),
    ("GET", "/publicity"): ("/publicity", None, PUBLISHERS),
    ("GET", "/publicity/export.csv"): ("/publicity/export.csv", None, PUBLISHERS),
    ("GET", "/publicity/export.json"): ("/publicity/export.json", None, PUBLISHERS),
    ("GET", "/admin/users"): ("/admin/users", None, ADMIN_ONLY),
    ("POST", "/admin/users"): (
        "/admin/users",
        {"username": "newbie", "role": "reviewer", "password": "a-long-pass"},
        ADMIN_SAVES,
    ),
    ("POST", "/admin/users/{username}/role"): ("/admin/users/rev/role", {"role": "reviewer"}, ADMIN_SAVES),
    ("POST", "/admin/users/{username}/active"): ("/admin/users/rev/active", {"active": "true"}, ADMIN_SAVES),
    ("POST", "/cases/{case_id}/move"): ("/cases/{case}/move", {"to": "executed"}, STEP_TAKERS),
    ("GET", "/work"): ("/work", None, LEGAL_WORK),
    ("GET", "/cases/{case_id}/notice"): ("/cases/{case}/notice", None, STEP_TAKERS),
    ("GET", "/static"): ("/static/review.css", None, dict.fromkeys(ACTORS, 200)),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    world = make_world(Path(tmp_path_factory.mktemp("world")), n_cases=len(ACTORS))
    for role, name in USERS.items():
        if name not in ("rev", "ops"):  # the seed made those two
            world.users.add_user(name, PASSWORD, role)
    return world


@pytest.fixture(scope="module")
def app(world: World):
    sessions = session_factory(make_engine(world.db_url))
    with sessions() as s:
        s.add(Party(kind="vehicle", name="浦东运输", company="浦东运输", plate="沪D62819"))
        s.commit()
    return create_app(replace(world.services, ops=lambda: VIEW, parties=PartyService(sessions, PartySettings())))


def routes(route_list, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every route, those of included routers too (HEAD goes with GET)."""
    out = set()
    for route in route_list:
        if isinstance(route, Route):
            out |= {(method, prefix + route.path) for method in route.methods - {"HEAD"}}
        elif isinstance(route, Mount):
            out.add(("GET", prefix + route.path))
        elif hasattr(route, "original_router"):  # FastAPI 0.16x keeps an included router whole
            out |= routes(route.original_router.routes, prefix + route.include_context.prefix)
    return out


def test_the_matrix_names_every_route(app) -> None:
    assert routes(app.routes) == set(MATRIX)


def client_for(app, actor: str) -> TestClient:
    client = TestClient(app)
    if actor != "anonymous":
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        form = {"username": USERS[actor], "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    return client


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    return found[1] if found else ""


@pytest.fixture(scope="module")
def clients(app) -> dict[str, TestClient]:
    """One signed-in client per actor (signing in is slow on purpose: PBKDF2), shared by the routes but sign-out."""
    return {actor: client_for(app, actor) for actor in ACTORS}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("route", sorted(MATRIX))
def test_every_route_answers_every_actor_as_allowed(app, clients, world: World, route, actor: str) -> None:
    url, form, expected = MATRIX[route]
    client = client_for(app, actor) if route == ("POST", "/logout") else clients[actor]
    # Each actor decides a case of its own, so an earlier actor's decision never answers for a later one.
    url = url.format(case=world.case_ids[ACTORS.index(actor)], party=1)
    form = {k: str(v).format(n=ACTORS.index(actor)) for k, v in form.items()} if form is not None else None
    if form is None:
        r = client.get(url, follow_redirects=False)
    else:
        r = client.post(url, data=form | {"csrf_token": csrf(client)}, follow_redirects=False)
    want = expected[actor]
    if want == LOGIN:
        assert (r.status_code, r.headers.get("location", "").split("?")[0]) == (303, "/login"), r.text[:200]
    elif want == DONE:
        assert r.status_code == 303 and r.headers["location"] != url.rsplit("/", 1)[0], r.headers
        assert world.cases.get(world.case_ids[ACTORS.index(actor)]).state == "confirmed"
    else:
        assert r.status_code == want, (route, actor, r.status_code, r.text[:200])


# The deployed app adds the machine endpoints to the review UI's routes: probes and scrapes answer anyone (they
# show no case), the push API only a gateway's token.
MACHINE = {
    ("GET", "/readyz"): 200,
    ("GET", "/metrics"): 200,
    ("GET", "/docs"): 200,
    ("POST", "/api/v1/points/{point_id}/frames"): 401,
}


def test_the_deployed_app_adds_only_the_machine_endpoints(tmp_path) -> None:
    from test_parties_cli import write_config

    from feixian.app import build_app
    from feixian.config import load_config
    from feixian.runtime import Runtime
    from pipeline.bus import MemoryBus

    app = build_app(Runtime(load_config(write_config(tmp_path), tmp_path / "data")), MemoryBus())
    added = routes(app.routes) - set(MATRIX)
    assert added == set(MACHINE) and set(MATRIX) <= routes(app.routes)
    client = TestClient(app)
    for (method, path), status in MACHINE.items():
        r = client.request(method, path.format(point_id="JDZ-001"), content=b"\xff\xd8", follow_redirects=False)
        assert r.status_code == status, (path, r.status_code, r.text[:200])
    assert client.get("/queue", follow_redirects=False).headers["location"].startswith("/login")
