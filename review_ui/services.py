"""What the review UI is given by the composition root: the case and user services, the evidence store,
its secret and its display settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from cases.parties import PartyService
from cases.publicity import PublicitySettings
from cases.service import CaseService
from cases.sla import SlaClock
from cases.store import ObjectStore
from cases.users import UserService
from cases.workdays import WorkCalendar

if TYPE_CHECKING:  # review_ui.ops renders with the dependencies that read these services
    from review_ui.ops import OpsFeed


class ZoneOutline(Protocol):
    """A zone the case page draws over the frame (`feixian.domain.Zone` fits): vertices in the frame's pixels."""

    id: str
    kind: str
    polygon: list[tuple[float, float]]


class PointLabel(Protocol):
    """What the UI shows of a point (`feixian.domain.Point` fits)."""

    name: str
    town: str
    zones: Sequence[ZoneOutline]


@dataclass(frozen=True)
class ReviewServices:
    """Everything the review UI needs, built by the composition root.

    `secret_key` signs the session cookie (at least 32 characters); `points` maps point ids to their
    names for display; `timezone` is the zone times are shown in; `https_only` marks the cookie Secure
    (set it behind TLS); `queue_limit` caps the rows on the queue page; `clock` gives "now" for the
    queue's waiting times.
    """

    cases: CaseService
    users: UserService
    store: ObjectStore
    secret_key: str
    points: Mapping[str, PointLabel] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    https_only: bool = False
    queue_limit: int = 500
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ops: OpsFeed | None = None  # the live figures of the ops page (`review_ui.ops`); without them there is none
    parties: PartyService | None = None  # the parties pages (`review_ui.routers.parties`); without it, 404
    # The three-day target the work queue sorts by (`cases.sla`); the agency and legal basis a notice cites.
    sla: SlaClock = field(default_factory=lambda: SlaClock(WorkCalendar()))
    publicity: PublicitySettings = field(default_factory=PublicitySettings)

    def __post_init__(self) -> None:
        if len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters (e.g. secrets.token_hex(32))")
        if self.queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not on the first page
