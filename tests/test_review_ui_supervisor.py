"""The supervisor page (issue 27 item 4 and its acceptance): the stage durations, discovery to execution against the
three-day target, the cases at risk and the decisions per person per day on the page equal those computed here
directly from the timestamps the seed gave each transition; and they are the figures of `feixian sla report`."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from review_ui_seed import SECRET
from test_case_procedure import Clock, walk
from test_case_procedure import clock as clock  # noqa: F401  (the fixtures, shared)
from test_case_procedure import service as service  # noqa: F401
from test_case_procedure import sessions as sessions  # noqa: F401
from test_case_procedure import store as store  # noqa: F401
from test_cases_verify import T0, file_case

from cases.lifecycle import PIPELINE_ACTOR, State
from cases.procedure import Move
from cases.sla import SlaClock, sla_report
from cases.users import UserService
from cases.workdays import WorkCalendar
from review_ui.app import ReviewServices, create_app

S = State
PASSWORD = "a-long-pass"  # test_case_procedure's accounts: li reviewer, wang legal, zhou supervisor
CLOCK = SlaClock(WorkCalendar(), target_working_days=3, at_risk_hours=24)
SHANGHAI = ZoneInfo("Asia/Shanghai")
# T0 is Monday 2 March 2026, 09:30 in Shanghai: three working days later ends Thursday at midnight, 16:00 UTC.
DUE = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)
PARTY_TIME = {"warned", "notified", "statement", "published"}
FULL = [
    (S.CONFIRMED, "li", None, None),
    (S.FILED, "wang", None, Move(fine_yuan=200)),
    (S.NOTIFIED, "wang", None, None),
    (S.DECIDED, "wang", "window closed", None),
    (S.DELIVERED, "li", None, None),
    (S.PUBLISHED, "wang", None, None),
    (S.EXECUTED, "li", None, None),
    (S.CLOSED, "zhou", None, None),
]
VOID = [(S.VOIDED, "li", "plate unreadable", None)]


def seed(service, store, clock: Clock, n: int = 16) -> dict[int, list[tuple[str, datetime, str]]]:
    """Cases stopped at random points of the lifecycle (every fifth voided, every third plate corrected in review),
    each step a random number of hours after the last; returns each case's (state, time, actor) as the seed
    stamped them, corrections left out."""
    rng = random.Random(2027)
    steps = {}
    for i in range(n):
        clock.now = T0 + timedelta(hours=rng.uniform(0.1, 3))
        case_id = file_case(service, store, f"ev-{i}", plate=f"沪C{i:05d}").id
        done = [("detected", clock.now, PIPELINE_ACTOR)]
        if i % 3 == 0:  # a reviewer's correction of the plate: no new stay and no decision of its own
            clock.advance(hours=rng.uniform(0.1, 2))
            service.correct(case_id, "plate", f"沪D{i:05d}", "li")
        path = VOID if i % 5 == 4 else FULL[: rng.randint(1, len(FULL))]
        for step in path:
            clock.advance(hours=rng.uniform(0.5, 30))
            if step[0] == S.DECIDED:
                clock.now = max(clock.now, service.get(case_id).statement_due_at)
            walk(service, case_id, [step])
            done.append((step[0].value, clock.now, step[1]))
        steps[case_id] = done
    return steps


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
    form = {"username": username, "password": password, "csrf_token": token}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


def hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def figure(html: str, name: str) -> tuple[str, str | None]:
    """(shown text, data-value) of the `data-figure` cell `name` in `html`."""
    m = re.search(rf'data-figure="{name}"(?: data-value="([^"]*)")?>([^<]*)<', html)
    assert m, name
    return m[2].strip(), m[1]


def assert_shown(html: str, name: str, expected: float) -> None:
    shown, value = figure(html, name)
    assert float(value) == pytest.approx(expected, abs=1e-3), name
    assert shown == f"{float(value):.1f}" and abs(float(shown) - expected) <= 0.05 + 1e-9, (name, shown, expected)


@pytest.fixture
def seeded(service, sessions, store, clock):
    steps = seed(service, store, clock)
    now = max(at for done in steps.values() for _, at, _ in done) + timedelta(hours=1)
    services = ReviewServices(
        cases=service, users=UserService(sessions), store=store, secret_key=SECRET, clock=lambda: now, sla=CLOCK
    )
    client = TestClient(create_app(services))
    sign_in(client, "zhou")
    return client, steps, now


def test_stage_durations_and_the_three_day_figures_equal_the_seeded_timestamps(seeded, sessions) -> None:
    client, steps, now = seeded
    html = client.get("/supervisor?lang=en").text

    stays: dict[str, list[float]] = {}
    for done in steps.values():
        for (state, start, _), (_, end, _) in zip(done, done[1:], strict=False):
            stays.setdefault(state, []).append(hours(start, end))
    assert sum(map(len, stays.values())) > 30, "the seed should exercise many stays"
    rows = dict(re.findall(r'<tr data-stage="([a-z_]+)">(.*?)</tr>', html, re.S))
    assert set(rows) == set(stays)
    for state, durations in stays.items():
        assert figure(rows[state], "count")[0] == str(len(durations)), state
        assert_shown(rows[state], "mean_hours", float(np.mean(durations)))
        assert_shown(rows[state], "p90_hours", float(np.percentile(durations, 90)))

    executed = {i: next((at for s, at, _ in done if s == "executed"), None) for i, done in steps.items()}
    to_execution = [hours(T0, at) for at in executed.values() if at is not None]
    assert len(to_execution) >= 2, "the seed should execute some cases"

    def due(done) -> datetime:
        ends = [at for _, at, _ in done[1:]] + [now]
        waited = sum((end - at for (s, at, _), end in zip(done, ends, strict=True) if s in PARTY_TIME), timedelta())
        return DUE + waited

    on_time = sum(executed[i] <= due(done) for i, done in steps.items() if executed[i] is not None)
    head = html.split('id="to-execution"')[1].split("</section>")[0]
    assert figure(head, "count")[0] == str(len(to_execution))
    assert figure(head, "on_time")[0] == str(on_time)
    assert_shown(head, "mean_hours", float(np.mean(to_execution)))
    assert_shown(head, "p90_hours", float(np.percentile(to_execution, 90)))

    finished = {"executed", "closed", "voided"}
    at_risk = {
        i
        for i, done in steps.items()
        if not {s for s, _, _ in done} & finished and due(done) - now <= timedelta(hours=24)
    }
    assert at_risk, "the seed should leave cases at risk"
    shown = html.split('id="at-risk"')[1].split("</section>")[0]
    assert {int(i) for i in re.findall(r'<a href="/cases/(\d+)">', shown)} == at_risk
    assert figure(head, "at_risk")[0] == str(len(at_risk))

    # The page shows what `feixian sla report --json` prints.
    report = sla_report(sessions, CLOCK, now).to_json()
    for state, row in rows.items():
        assert figure(row, "mean_hours")[1] == str(report["stages"][state]["mean_hours"])
    assert figure(head, "p90_hours")[1] == str(report["discovery_to_execution"]["p90_hours"])


@pytest.mark.parametrize("days", [31, 3])
def test_decisions_per_person_per_day_equal_the_seeded_transitions(seeded, days: int) -> None:
    client, steps, now = seeded
    html = client.get(f"/supervisor?days={days}").text
    last = now.astimezone(SHANGHAI).date()
    first = last - timedelta(days=days - 1)
    counted = Counter(
        (actor, at.astimezone(SHANGHAI).date())
        for done in steps.values()
        for _, at, actor in done
        if actor != PIPELINE_ACTOR and first <= at.astimezone(SHANGHAI).date() <= last
    )
    people = sorted({actor for actor, _ in counted})
    assert people, "the window should hold some decisions"
    shown = dict(re.findall(r'<tr data-person="([^"]+)" data-daily="([^"]*)">', html))
    assert sorted(shown) == people
    span = [first + timedelta(days=n) for n in range(days)]
    for person in people:
        daily = [counted[(person, day)] for day in span]
        assert shown[person] == ",".join(map(str, daily)), person
        row = html.split(f'data-person="{person}"')[1].split("</tr>")[0]
        assert figure(row, "total")[0] == str(sum(daily))
        assert figure(row, "per_day")[0] == f"{sum(daily) / days:.1f}"
    # The chart of everyone's decisions per day, drawn by the app: one column per day, no script, no foreign asset.
    chart = re.search(r'<svg class="columns".*?</svg>', html, re.S)[0]
    assert len(re.findall('class="col-value"', chart)) == days
    figures = [int(f) for f in re.findall(r'class="col-figure"[^>]*>(\d+)<', chart)]
    assert figures == [sum(counted[(p, day)] for p in people) for day in span]
    assert "<script" not in chart and "http" not in chart.replace("http://www.w3.org", "")


def test_the_page_is_in_chinese_first(seeded) -> None:
    client, _, _ = seeded
    html = client.get("/supervisor?lang=zh-CN").text
    assert "办案时效督办" in html and "从发现到执行" in html and 'href="/supervisor"' in html
