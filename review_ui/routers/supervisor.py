"""The supervisor page (issue 27 item 4): how long cases stay in each stage (count, mean and 90th percentile hours),
discovery to execution against the three-day target, the cases at risk or overdue, and each person's decisions per
day, with charts drawn by the app (`review_ui.ops_charts`).

The figures are those of `feixian sla report --json` (`cases.sla.sla_report` over the same clock), so the page and
the command never disagree; the decisions per day come from the audit trail (`cases.throughput`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from cases.lifecycle import Role, State
from cases.models import User
from cases.sla import sla_report
from cases.throughput import Throughput, decisions_per_day
from review_ui.dependencies import render, require_role, review_services
from review_ui.i18n import Translator
from review_ui.ops_charts import bars, columns, sparkline

# The supervisor answers for the bureau's clock; legal and reviewers work their own queues, ops and admin no cases.
SUPERVISOR_ROLES = frozenset({Role.SUPERVISOR.value})
SupervisorUser = Annotated[User, Depends(require_role(SUPERVISOR_ROLES, "the supervisor page"))]
# The spans of the throughput table offered as links; any other from 1 to MAX_DAYS may be asked for.
DAY_CHOICES = (7, 14, 30)
MAX_DAYS = 31

router = APIRouter()


@router.get("/supervisor", include_in_schema=False)
def supervisor_page(
    request: Request,
    user: SupervisorUser,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="days of the throughput table")] = DAY_CHOICES[0],
) -> HTMLResponse:
    services = review_services(request)
    now = services.clock()
    sessions = services.cases.sessions
    report = sla_report(sessions, services.sla, now)
    figures = report.to_json()  # as `feixian sla report --json` prints them
    stages = [(State(state), d) for state, d in figures["stages"].items() if d["count"]]
    throughput = decisions_per_day(sessions, services.sla.calendar.tz, now, days)
    return render(
        request,
        "supervisor.html",
        user,
        report=report,
        stages=stages,
        to_execution=figures["discovery_to_execution"],
        throughput=throughput,
        people={u.username: u for u in services.users.list_users()},
        days=days,
        day_choices=DAY_CHOICES,
        stage_bars=stage_bars,
        daily_columns=daily_columns,
        sparkline=sparkline,
    )


def stage_bars(t: Translator, stages: list[tuple[State, dict]]) -> Markup:
    """Each stage's mean hours drawn over its 90th percentile."""
    rows = [(t.label("state", state.value), d["mean_hours"], d["p90_hours"]) for state, d in stages]
    return bars(rows, t("sup.chart_stages"))


def daily_columns(t: Translator, throughput: Throughput) -> Markup:
    """Everyone's decisions on each day."""
    names = [day.strftime("%m-%d") for day in throughput.days]
    return columns(throughput.daily_totals(), names, t("sup.chart_daily", n=len(names)))
