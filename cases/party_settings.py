"""The `parties:` section of the settings file: which matters may be let off as a first minor violation (首违不罚
清单), how far back a party's history counts, and the risk grades' thresholds and inspection intervals (分级分类
监管, DESIGN.md §3 requirements 9 and 12). The rules themselves are in `cases.party_history`.

>>> PartySettings().first_minor_subtypes
['shopfront', 'goods', 'dirty']
"""

from __future__ import annotations

from pydantic import Field, model_validator

from feixian.domain import StrictModel


class PartySettings(StrictModel):
    """First minor violations and risk grades of parties."""

    first_minor_subtypes: list[str] = Field(
        default_factory=lambda: ["shopfront", "goods", "dirty"],
        description="Subtypes on the bureau's published 首违不罚 list: a party's first one is warned, not fined. "
        "Uncovered muck trucks and stalls are left off by default, as Shanghai's list leaves them.",
    )
    history_days: int = Field(
        default=365,
        ge=30,
        le=1825,
        description="How far back (days before the case, or before a grade's review day) a party's violations count, "
        "both for a first violation and for the risk grade.",
    )
    medium_risk_from: int = Field(default=1, ge=1, le=100, description="Risk score from which a party is medium risk.")
    high_risk_from: int = Field(default=4, ge=2, le=100, description="Risk score from which a party is high risk.")
    review_every_days: int = Field(
        default=14,
        ge=1,
        le=90,
        description="Grades are reviewed this often (every two weeks): between two reviews "
        "a party keeps the grade of the last one.",
    )
    inspect_every_days: dict[str, int] = Field(
        default_factory=lambda: {"low": 60, "medium": 30, "high": 14},
        description="Days between inspections per grade; low risk means an inspection every two months.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PartySettings:
        if self.high_risk_from <= self.medium_risk_from:
            raise ValueError("high_risk_from must be above medium_risk_from")
        if set(self.inspect_every_days) != {"low", "medium", "high"}:
            raise ValueError("inspect_every_days needs exactly the grades low, medium and high")
        if not all(1 <= d <= 365 for d in self.inspect_every_days.values()):
            raise ValueError("inspect_every_days: each interval is 1 to 365 days")
        return self
