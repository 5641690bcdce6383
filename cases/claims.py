"""Claims on cases in the evidence review, so that two reviewers never decide the same case.

Opening a case to decide it claims it for a few minutes (renewed each time the claimant opens it again); while the
claim holds nobody else may decide it; the claimant's decision releases it; an abandoned claim simply expires.

>>> import tempfile, os
>>> from datetime import datetime, timedelta, timezone
>>> from cases.db import make_engine, session_factory, upgrade
>>> from cases.service import CaseService
>>> from cases.records import NewCase
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> sessions = session_factory(make_engine(url))
>>> t = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
>>> rec = NewCase("e1", "JDZ-001", "cam-1", "occupation", "stall", "front", t, t, None, None,
...               (31.38, 121.25), 0.8, {"manifest": "m.json"}, "m.json", "ab" * 32)
>>> case_id = CaseService(sessions).open_case(rec)[0].id
>>> now = [t]
>>> claims = ClaimService(sessions, minutes=10, clock=lambda: now[0])
>>> claims.claim(case_id, "li").username, claims.claim(case_id, "wang").username
('li', 'li')
>>> now[0] += timedelta(minutes=11)  # li walked away: the claim has expired
>>> claims.claim(case_id, "wang").username
'wang'
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cases.models import CaseClaim, utcnow
from feixian.domain import StrictModel

DEFAULT_MINUTES = 10


class ClaimSettings(StrictModel):
    """The `claims:` section of the settings file."""

    minutes: int = Field(
        default=DEFAULT_MINUTES,
        ge=1,
        le=240,
        description="How long opening a case holds it for its reviewer; long enough to watch the clip and decide, "
        "short enough that a case left open on an abandoned screen soon returns to the others.",
    )


@dataclass(frozen=True)
class Claim:
    """Who holds a case, since when and until when."""

    case_id: int
    username: str
    claimed_at: datetime
    expires_at: datetime


def _claim(row: CaseClaim) -> Claim:
    return Claim(row.case_id, row.username, row.claimed_at, row.expires_at)


class ClaimService:
    """Claims over a SQLAlchemy session factory (see the module example); `clock` gives "now"."""

    def __init__(
        self, sessions: sessionmaker[Session], minutes: int = DEFAULT_MINUTES, clock: Callable[[], datetime] = utcnow
    ):
        self._sessions = sessions
        self.ttl = timedelta(minutes=minutes)
        self.clock = clock

    def claim(self, case_id: int, username: str) -> Claim:
        """Claim the case for `username` (or renew their claim) unless someone else's claim still holds; returns
        the claim that holds the case afterwards, so the caller compares its `username` with its own."""
        now = self.clock()
        values = {"username": username, "claimed_at": now, "expires_at": now + self.ttl}
        with self._sessions() as s:
            # One conditional UPDATE: of two reviewers taking over an expired claim at once, only one matches.
            taken = s.execute(
                update(CaseClaim)
                .where(CaseClaim.case_id == case_id, or_(CaseClaim.username == username, CaseClaim.expires_at <= now))
                .values(**values)
            ).rowcount
            if not taken and s.get(CaseClaim, case_id) is None:
                s.add(CaseClaim(case_id=case_id, **values))
            try:
                s.commit()
            except IntegrityError:  # another reviewer's first claim was inserted meanwhile: theirs holds
                s.rollback()
            s.expire_all()
            return _claim(s.get_one(CaseClaim, case_id))

    def holders(self, case_ids: Collection[int]) -> dict[int, Claim]:
        """The claims that still hold on any of `case_ids` (the queue shows who has each)."""
        if not case_ids:
            return {}
        query = select(CaseClaim).where(CaseClaim.case_id.in_(list(case_ids)), CaseClaim.expires_at > self.clock())
        with self._sessions() as s:
            return {row.case_id: _claim(row) for row in s.scalars(query)}

    def release(self, case_id: int, username: str) -> None:
        """End `username`'s claim on the case (their decision is taken); someone else's claim is left alone."""
        with self._sessions() as s:
            s.execute(delete(CaseClaim).where(CaseClaim.case_id == case_id, CaseClaim.username == username))
            s.commit()
