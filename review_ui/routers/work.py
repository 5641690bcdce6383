"""The legal work queue: the cases past the evidence review and still open (confirmed up to published, and those
whose publication was withdrawn), the least time left against the three-day target first, those at risk or overdue
marked. The clock is `cases.sla`'s, the one `feixian sla report` and `feixian cases list --json` show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from cases.lifecycle import Role, State
from cases.models import Case, User
from cases.sla import DONE, CaseClock, load_timelines
from review_ui.dependencies import render, require_role, review_services
from review_ui.services import ReviewServices

# Past the evidence review, not yet off the clock.
WORK_STATES = frozenset(State) - {State.DETECTED} - DONE
# Filing, notices and decisions are theirs; reviewers work the review queue, ops and admin no cases.
WORK_ROLES = frozenset({Role.LEGAL.value, Role.SUPERVISOR.value})
WorkUser = Annotated[User, Depends(require_role(WORK_ROLES, "the legal work queue"))]

router = APIRouter()


@dataclass(frozen=True)
class WorkItem:
    """An open case and its clock; `at_risk` when its time left is within the clock's margin (or gone)."""

    case: Case
    clock: CaseClock
    at_risk: bool


def work_items(services: ReviewServices, now: datetime) -> list[WorkItem]:
    """Every case in `WORK_STATES` with its clock at `now`, the least time left first (then the oldest case)."""
    timelines = load_timelines(services.cases.sessions, WORK_STATES)
    with services.cases.sessions() as s:
        cases = s.scalars(select(Case).where(Case.state.in_([state.value for state in WORK_STATES])))
        clocks = [(c, services.sla.of(c.triggered_at, timelines.get(c.id, []), now)) for c in cases]
    items = [WorkItem(c, k, (k.hours_left or 0.0) <= services.sla.at_risk_hours) for c, k in clocks]
    return sorted(items, key=lambda item: (item.clock.due_at, item.case.id))


@router.get("/work", include_in_schema=False)
def work_page(request: Request, user: WorkUser) -> HTMLResponse:
    services = review_services(request)
    now = services.clock()
    items = work_items(services, now)
    return render(
        request,
        "work.html",
        user,
        items=items[: services.queue_limit],
        total=len(items),
        at_risk=sum(item.at_risk for item in items),
        overdue=sum(item.clock.overdue for item in items),
        target_days=services.sla.target_working_days,
        now=now,
    )
