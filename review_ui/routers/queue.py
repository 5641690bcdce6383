"""The queue: detected cases waiting for their evidence review, oldest first, filtered by point, town, category,
state and the dates they were detected on (in the app's timezone).

The filter chosen on the queue page is kept in the session, so the case page's previous/next (J/K) and the case
loaded after a decision follow the same queue the reviewer is working through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cases.lifecycle import State
from cases.models import User
from review_ui.dependencies import PageUser, render, review_services
from review_ui.services import PointLabel, ReviewServices

router = APIRouter()

QUEUE_FILTER = "queue_filter"  # the session slot of the queue's filter
CATEGORIES = ("occupation", "vehicle")
# The states a reviewer looks back over; later stages have their own pages.
STATES = (State.DETECTED.value, State.CONFIRMED.value, State.VOIDED.value)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class QueueFilter:
    """Which cases the queue shows; a value the page does not offer is ignored rather than refused.

    `detected_from` and `detected_to` are days in the app's timezone, both included.

    >>> f = QueueFilter.of({"town": "嘉定镇", "detected_from": "2026-03-02", "detected_to": "bad"}, {})
    >>> f.town, f.detected_from, f.detected_to
    (None, datetime.date(2026, 3, 2), None)
    """

    point: str | None = None
    category: str | None = None
    state: str = State.DETECTED.value
    town: str | None = None
    detected_from: date | None = None
    detected_to: date | None = None

    @classmethod
    def of(cls, asked: Mapping[str, str], points: Mapping[str, PointLabel]) -> QueueFilter:
        point, category, state, town = (asked.get(k) for k in ("point", "category", "state", "town"))
        return cls(
            point if point in points else None,
            category if category in CATEGORIES else None,
            state if state in STATES else State.DETECTED.value,
            town if town in towns(points) else None,
            _day(asked.get("detected_from")),
            _day(asked.get("detected_to")),
        )

    def to_session(self) -> dict[str, str]:
        """The filter as the query string that chose it (the session keeps JSON)."""
        days = {"detected_from": self.detected_from, "detected_to": self.detected_to}
        chosen = {"point": self.point, "category": self.category, "state": self.state, "town": self.town} | {
            k: d.isoformat() if d else None for k, d in days.items()
        }
        return {k: v for k, v in chosen.items() if v}

    def query(self, services: ReviewServices) -> dict[str, Any]:
        """The filter as `CaseService.list_cases` / `count_cases` take it: a town is its points, days are the
        instants their local midnights fall on."""
        tz = ZoneInfo(services.timezone)
        return {
            "state": self.state,
            "point_id": self.point,
            "category": self.category,
            "point_ids": [p for p, label in services.points.items() if label.town == self.town] if self.town else None,
            "since": datetime.combine(self.detected_from, time(), tz) if self.detected_from else None,
            "until": datetime.combine(self.detected_to + timedelta(days=1), time(), tz) if self.detected_to else None,
        }

    def cases(self, services: ReviewServices, limit: int) -> list:
        return services.cases.as_corrected(services.cases.list_cases(limit=limit, **self.query(services)))

    def case_ids(self, services: ReviewServices, limit: int) -> list[int]:
        return services.cases.list_case_ids(limit=limit, **self.query(services))


def towns(points: Mapping[str, PointLabel]) -> list[str]:
    return sorted({p.town for p in points.values()})


def session_filter(request: Request) -> QueueFilter:
    return QueueFilter.of(request.session.get(QUEUE_FILTER) or {}, review_services(request).points)


def queue_ids(request: Request, user: User) -> list[int]:
    """The queue's case ids in its order (the case page's previous and next), less those another reviewer holds:
    J/K and the case after a decision never lead into someone else's claim."""
    services = review_services(request)
    ids = session_filter(request).case_ids(services, services.queue_limit)
    held = services.cases.claims.holders(ids)
    return [i for i in ids if i not in held or held[i].username == user.username]


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue", include_in_schema=False)
def queue(request: Request, user: PageUser) -> HTMLResponse:
    services = review_services(request)
    chosen = QueueFilter.of(request.query_params, services.points)
    request.session[QUEUE_FILTER] = chosen.to_session()
    cases = chosen.cases(services, services.queue_limit)
    total = services.cases.count_cases(**chosen.query(services))
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
        towns=towns(services.points),
        categories=CATEGORIES,
        states=STATES,
    )
