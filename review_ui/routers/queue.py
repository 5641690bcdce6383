"""The queue: detected cases waiting for their evidence review, oldest first, filtered by point, category and state.

The filter chosen on the queue page is kept in the session, so the case page's previous/next (J/K) and the case
loaded after a decision follow the same queue the reviewer is working through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cases.lifecycle import State
from cases.models import User
from review_ui.dependencies import PageUser, render, review_services
from review_ui.services import ReviewServices

router = APIRouter()

QUEUE_FILTER = "queue_filter"  # the session slot of the queue's filter
CATEGORIES = ("occupation", "vehicle")
# The states a reviewer looks back over; later stages have their own pages.
STATES = (State.DETECTED.value, State.CONFIRMED.value, State.VOIDED.value)


@dataclass(frozen=True)
class QueueFilter:
    """Which cases the queue shows; a value the page does not offer is ignored rather than refused."""

    point: str | None = None
    category: str | None = None
    state: str = State.DETECTED.value

    @classmethod
    def of(cls, asked: Mapping[str, str], points: Mapping[str, object]) -> QueueFilter:
        point, category, state = asked.get("point"), asked.get("category"), asked.get("state")
        return cls(
            point if point in points else None,
            category if category in CATEGORIES else None,
            state if state in STATES else State.DETECTED.value,
        )

    def cases(self, services: ReviewServices, limit: int) -> list:
        return services.cases.list_cases(state=self.state, point_id=self.point, category=self.category, limit=limit)


def session_filter(request: Request) -> QueueFilter:
    return QueueFilter.of(request.session.get(QUEUE_FILTER) or {}, review_services(request).points)


def queue_ids(request: Request, user: User) -> list[int]:
    """The queue's case ids in its order (the case page's previous and next), less those another reviewer holds:
    J/K and the case after a decision never lead into someone else's claim."""
    services = review_services(request)
    ids = [c.id for c in session_filter(request).cases(services, services.queue_limit)]
    held = services.cases.claims.holders(ids)
    return [i for i in ids if i not in held or held[i].username == user.username]


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue", include_in_schema=False)
def queue(request: Request, user: PageUser) -> HTMLResponse:
    services = review_services(request)
    chosen = QueueFilter.of(request.query_params, services.points)
    request.session[QUEUE_FILTER] = asdict(chosen)
    cases = chosen.cases(services, services.queue_limit)
    total = services.cases.count_cases(state=chosen.state, point_id=chosen.point, category=chosen.category)
    return render(
        request,
        "queue.html",
        user,
        cases=cases,
        total=total,
        now=services.clock(),
        claims=services.cases.claims.holders([c.id for c in cases]),
        chosen=chosen,
        points=sorted(services.points),
        categories=CATEGORIES,
        states=STATES,
    )
