"""What a party's earlier cases say about it: whether a new case is its first minor violation (首违不罚, DESIGN.md
§3 requirement 9) and its risk grade (分级分类监管, requirement 12).

A violation is a case of the party that passed its evidence review: any state but `detected` and `voided`. It is
penalised once a decision was taken on it (its chain reached `decided`).

First minor violation: the case's subtype is on the configured list, and the party has no other violation
triggered in the `history_days` before it. A case with no party on record is never judged a first one: the
warning is a favour that needs to know whom it is for.

Risk grade: each violation triggered in the `history_days` before the review day scores 1, and 1 more when it
was penalised (a fine, not a warning, so the party did not correct it or it was not minor). A score of 0 is low
risk, from `medium_risk_from` medium, from `high_risk_from` high. Grades are reviewed every `review_every_days`
days from Monday 2026-01-05 (UTC days): between two reviews a party keeps the grade of the last, and its next
inspection is due `inspect_every_days[grade]` after that review.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
>>> s = PartySettings()
>>> first_minor("goods", t, [], s).eligible
True
>>> past = [PastCase(7, "goods", "closed", datetime(2026, 2, 2, tzinfo=UTC), penalised=True)]
>>> first_minor("goods", t, past, s).eligible
False
>>> r = risk_grade(past, t, s)
>>> (r.grade.value, r.score, r.reviewed_on.isoformat(), r.next_inspection_on.isoformat())
('medium', 2, '2026-03-02', '2026-04-01')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from cases.lifecycle import State
from cases.party_settings import PartySettings

NOT_VIOLATIONS = frozenset({State.DETECTED.value, State.VOIDED.value})
REVIEW_EPOCH = date(2026, 1, 5)  # a Monday: the fortnightly reviews fall on Mondays


class Grade(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


GRADE_LABELS = {Grade.LOW: "低风险", Grade.MEDIUM: "中风险", Grade.HIGH: "高风险"}


@dataclass(frozen=True)
class PastCase:
    """One case of the party as its history counts it."""

    case_id: int
    subtype: str
    state: str
    triggered_at: datetime
    penalised: bool

    @property
    def is_violation(self) -> bool:
        return self.state not in NOT_VIOLATIONS


@dataclass(frozen=True)
class FirstMinor:
    """Whether a case may be warned instead of fined, and why (zh-CN first, English second)."""

    eligible: bool
    reason: str


@dataclass(frozen=True)
class Risk:
    """A party's risk grade as of its last review."""

    grade: Grade
    score: int
    reviewed_on: date
    next_review_on: date
    next_inspection_on: date

    def to_json(self) -> dict:
        return {
            "grade": self.grade.value,
            "label": GRADE_LABELS[self.grade],
            "score": self.score,
            "reviewed_on": self.reviewed_on.isoformat(),
            "next_review_on": self.next_review_on.isoformat(),
            "next_inspection_on": self.next_inspection_on.isoformat(),
        }


def first_minor(subtype: str, triggered_at: datetime, others: Sequence[PastCase], s: PartySettings) -> FirstMinor:
    """Whether a case of `subtype` triggered at `triggered_at` is the party's first minor violation; `others`: the
    party's other cases (this one left out)."""
    if subtype not in s.first_minor_subtypes:
        return FirstMinor(False, f"{subtype} 不在首违不罚清单 / {subtype} is not on the first-minor list")
    earlier = violations_before(others, triggered_at, s)
    if earlier:
        ids = ", ".join(map(str, earlier))
        return FirstMinor(False, f"{s.history_days} 天内已有违法（案件 {ids}） / earlier violations: cases {ids}")
    return FirstMinor(True, f"{s.history_days} 天内无违法记录 / no violation in {s.history_days} days")


def violations_before(history: Sequence[PastCase], at: datetime, s: PartySettings) -> list[int]:
    """The ids of the violations in `history` triggered in the `history_days` up to `at`: none left means the party's
    next violation of a listed subtype is a first minor one."""
    since = at - timedelta(days=s.history_days)
    return sorted(c.case_id for c in history if c.is_violation and since <= c.triggered_at <= at)


def review_day(now: datetime, every_days: int) -> date:
    """The last review day on or before `now` (UTC days, every `every_days` from `REVIEW_EPOCH`)."""
    elapsed = (now.astimezone(UTC).date() - REVIEW_EPOCH).days
    return REVIEW_EPOCH + timedelta(days=elapsed - elapsed % every_days)


def risk_grade(history: Sequence[PastCase], now: datetime, s: PartySettings) -> Risk:
    """The party's grade as of the last review day before `now`, from its `history` (every case of the party)."""
    reviewed = review_day(now, s.review_every_days)
    end = datetime.combine(reviewed, time(), UTC)
    since = end - timedelta(days=s.history_days)
    counted = [c for c in history if c.is_violation and since <= c.triggered_at < end]
    score = len(counted) + sum(c.penalised for c in counted)
    grade = Grade.HIGH if score >= s.high_risk_from else Grade.MEDIUM if score >= s.medium_risk_from else Grade.LOW
    return Risk(
        grade,
        score,
        reviewed,
        reviewed + timedelta(days=s.review_every_days),
        reviewed + timedelta(days=s.inspect_every_days[grade.value]),
    )
