"""The queue: detected cases waiting for their evidence review, oldest first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cases.lifecycle import State
from review_ui.dependencies import PageUser, render, review_services
from review_ui.services import ReviewServices

router = APIRouter()


def queue_ids(services: ReviewServices) -> list[int]:
    """The queue's case ids in its order (the case page's previous and next)."""
    return [c.id for c in services.cases.list_cases(state=State.DETECTED, limit=services.queue_limit)]


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue", include_in_schema=False)
def queue(request: Request, user: PageUser) -> HTMLResponse:
    services = review_services(request)
    cases = services.cases.list_cases(state=State.DETECTED, limit=services.queue_limit)
    total = services.cases.count_cases(state=State.DETECTED)
    return render(request, "queue.html", user, cases=cases, total=total, now=services.clock())
