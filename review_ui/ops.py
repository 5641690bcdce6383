"""The ops page (`/ops`, roles ops and admin): each point's state, last frame, frames/s, drops, queue and detector
load, with the last minutes drawn as small charts, and how long the open cases have waited against the bureau's
three-day target.

The UI defines what it shows (`OpsView`) and the composition root supplies it (`feixian.metrics.OpsMonitor.view`),
the figures `/metrics` exports too; the review UI imports no pipeline code. The page refreshes its figures on its
own (`static/ops.js`, no inline script under the CSP), and the charts are SVG drawn here (`review_ui.ops_charts`).

>>> up = PointOps("JDZ-001", up=True, last_frame_at=None, frames_per_s=4.96, detector_load=0.21, pending=0)
>>> down = PointOps("GYQ-001", up=False, last_frame_at=None, frames_per_s=None, detector_load=None, pending=3)
>>> totals(OpsView(points=[up, down], cases=[], target_s=72 * 3600, interval_s=5.0))
{'up': 1, 'points': 2, 'fps': 5.0, 'load': 0.21}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from cases.lifecycle import Role
from cases.models import User
from review_ui.dependencies import render, require_role
from review_ui.i18n import Translator
from review_ui.ops_charts import sparkline

# Who runs the system: operations, and administrators who keep the accounts. Case roles see cases, not cameras.
OPS_ROLES = frozenset({Role.OPS.value, Role.ADMIN.value})
OpsUser = Annotated[User, Depends(require_role(OPS_ROLES, "the ops page"))]
# How often the page fetches its figures again (static/ops.js reads it from the page).
REFRESH_S = 5


@dataclass(frozen=True)
class PointOps:
    """One point as ops sees it; rates are over the last sampling window, None before there is one."""

    point_id: str
    up: bool  # its worker runs and comes round (the /readyz judgement)
    last_frame_at: datetime | None  # capture time of the last frame analysed
    frames_per_s: float | None
    detector_load: float | None  # share of one core spent in the detector
    pending: int  # frames queued on the bus for it
    dropped: Mapping[str, int] = field(default_factory=dict)  # by reason: push refusals and worker drops
    fps_history: Sequence[float] = ()  # oldest first, one value for each sampling interval
    load_history: Sequence[float] = ()


@dataclass(frozen=True)
class StateAges:
    """The cases in one state; `running` when the three-day target (discovery to execution) still runs for it."""

    state: str
    count: int
    running: bool
    oldest_age: timedelta | None = None
    over_target: int = 0


@dataclass(frozen=True)
class OpsView:
    points: Sequence[PointOps]
    cases: Sequence[StateAges]
    target_s: float
    interval_s: float  # between two values of a history

    @property
    def history_min(self) -> float:
        """How many minutes the charts span."""
        longest = max((len(p.fps_history) for p in self.points), default=0)
        return round(longest * self.interval_s / 60, 1)


OpsFeed = Callable[[], OpsView]


def totals(view: OpsView) -> dict[str, float]:
    """The page's headline: points up, and frames/s and detector load summed over the points."""
    return {
        "up": sum(p.up for p in view.points),
        "points": len(view.points),
        "fps": round(sum(p.frames_per_s or 0.0 for p in view.points), 1),
        "load": round(sum(p.detector_load or 0.0 for p in view.points), 2),
    }


def since(t: Translator, span: timedelta) -> str:
    """How long ago, to the second for the first two minutes (a camera silent for 30 s matters).

    >>> since(Translator("en"), timedelta(seconds=42)), since(Translator("zh-CN"), timedelta(minutes=5))
    ('42 s ago', '5分钟前')
    """
    seconds = max(0, int(span.total_seconds()))
    age = t("ops.seconds", s=seconds) if seconds < 120 else t.age(span)
    return t("ops.ago", age=age)


def make_ops_router(feed: OpsFeed, clock: Callable[[], datetime]) -> APIRouter:
    """`GET /ops` for the OPS_ROLES (mounted by `create_app`)."""
    router = APIRouter()

    @router.get("/ops", include_in_schema=False)
    def ops_page(request: Request, user: OpsUser) -> HTMLResponse:
        view = feed()
        return render(
            request,
            "ops.html",
            user,
            view=view,
            totals=totals(view),
            now=clock(),
            since=since,
            sparkline=sparkline,
            refresh_s=REFRESH_S,
            minutes=view.history_min,
        )

    return router
