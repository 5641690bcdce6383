"""A reviewer's corrections of what the machine read: the plate text and the subtype, made during the evidence review.

The evidence stays as recorded: the manifest, and the case's `party` and `subtype` columns that `feixian evidence
verify` checks against it. A correction is a link of the case's audit chain from its state to the same state, whose
hashed details name the fact with its old and new value; verify checks it with the rest of the chain. The facts as
corrected are the recorded ones with each correction applied in chain order.

>>> check_correction("plate", " 沪d·62819 ", "vehicle"), check_correction("subtype", "goods", "occupation")
('沪D62819', 'goods')
>>> check_correction("subtype", "dirty", "occupation")
Traceback (most recent call last):
...
cases.corrections.CorrectionError: 类别 occupation 没有细类 'dirty' / category occupation has no subtype 'dirty'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.models import Case, CaseTransition
from cases.parties import normalise_plate

PLATE, SUBTYPE = "plate", "subtype"
# The subtypes of each category, as `pipeline.taxonomy` derives them from the detector's classes (cases do not
# import the pipeline; a test keeps the two in step).
SUBTYPES: dict[str, tuple[str, ...]] = {
    "occupation": ("stall", "shopfront", "goods"),
    "vehicle": ("dirty", "uncovered"),
}
# Their zh-CN names, which the publicity export prints for a corrected subtype (the manifest names the machine's
# reading); the same test keeps them in step with `pipeline.taxonomy.SUBTYPE_LABELS`.
SUBTYPE_ZH = {
    "stall": "占道设摊",
    "shopfront": "出店经营",
    "goods": "乱堆物料",
    "dirty": "车容不洁",
    "uncovered": "渣土车未密闭",
}
# A mainland plate: the province, the issuing office's letter, then five characters (six on new-energy plates); the
# last may be 挂 (trailer), 学 (learner) or 警 (police).
_PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z][A-Z0-9]{4,5}[A-Z0-9挂学警]")


class CorrectionError(ValueError):
    """The value may not stand in for the machine's reading; the message is zh-CN first, English second."""


def check_correction(field: str, value: str, category: str) -> str:
    """`value` as stored (a plate normalised), or `CorrectionError` when it is not a plate / the category's subtype."""
    if field == PLATE:
        plate = normalise_plate(value)
        if not _PLATE.fullmatch(plate):
            raise CorrectionError(f"{value.strip()!r} 不是有效的车牌号 / {value.strip()!r} is not a valid plate")
        return plate
    if field == SUBTYPE:
        if value not in SUBTYPES.get(category, ()):
            raise CorrectionError(f"类别 {category} 没有细类 {value!r} / category {category} has no subtype {value!r}")
        return value
    raise CorrectionError(f"不能更正 {field!r} / {field!r} cannot be corrected")


def correction(details: Mapping[str, Any] | None) -> tuple[str, str | None, str] | None:
    """(field, old, new) of a chain link's details when the link is a correction, else None."""
    if not details or details.get("corrected") not in (PLATE, SUBTYPE):
        return None
    return details["corrected"], details.get("old"), details["new"]


def corrected(case: Case, links_details: Iterable[Mapping[str, Any] | None]) -> dict[str, str | None]:
    """The plate and subtype as the review left them: the case's recorded values with the corrections among
    `links_details` (its chain's details, in order) applied."""
    facts = {PLATE: case.party, SUBTYPE: case.subtype}
    for details in links_details:
        if found := correction(details):
            facts[found[0]] = found[2]
    return facts


class AsCorrected:
    """A case as every reader after the review shows it: the stored case, its `party` (plate) and `subtype` as
    corrected. The stored columns keep the machine's reading (`recorded_party`, `recorded_subtype`) so the evidence
    still verifies against its manifest."""

    def __init__(self, case: Case, facts: Mapping[str, str | None]):
        self._case = case
        self.recorded_party, self.recorded_subtype = case.party, case.subtype
        self.party, self.subtype = facts[PLATE], facts[SUBTYPE]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._case, name)


def as_corrected(s: Session, cases: Iterable[Case]) -> list[AsCorrected]:
    """`cases` with their corrections applied, read in one query for all of them (the queue lists many)."""
    cases = list(cases)
    links: dict[int, list[Any]] = {c.id: [] for c in cases}
    same_state = CaseTransition.from_state == CaseTransition.to_state  # a correction never moves the case
    rows = s.execute(
        select(CaseTransition.case_id, CaseTransition.details)
        .where(CaseTransition.case_id.in_(links), same_state)
        .order_by(CaseTransition.case_id, CaseTransition.seq)
    )
    for case_id, details in rows:
        links[case_id].append(details)
    return [AsCorrected(c, corrected(c, links[c.id])) for c in cases]
