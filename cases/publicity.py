"""双公示: the penalty decisions the bureau must publish (DESIGN.md §3 requirement 11), as CSV and JSON with their
key frames blurred (`cases.redact`).

Published: every case whose chain reached `decided` and that now stands at `decided` or later (delivered,
published, executed, closed). Never published: a case that was ever warned (a first minor violation: 首违不罚
cases never reach the credit platform, even when later filed for not correcting), and a case whose publication
was withdrawn (state `withdrawn`: its decision changed or was revoked): it is listed under `withdrawn` instead,
with the day, so the platform takes it down, and its images are removed from the export folder. A re-decided
case comes back under a new decision day.

Each record holds only what the rules ask for: decision number, penalty type, violation, facts, legal basis,
the party's name and code, outcome, agency and decision day. The party is named by its shop or its transport
company with the licence number (unified social credit code); never a person's name, an ID number, a phone
number, an address, the contact for notices or a plate.

>>> PublicitySettings().decision_no(42, 2026)
'浦城管罚〔2026〕第000042号'
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.corrections import SUBTYPE_ZH, AsCorrected, as_corrected
from cases.lifecycle import State
from cases.models import Case, CaseTransition, Party
from cases.redact import BlurSettings
from feixian.domain import StrictModel

PUBLISHED_STATES = frozenset({State.DECIDED, State.DELIVERED, State.PUBLISHED, State.EXECUTED, State.CLOSED})
FIELDS = {
    "decision_no": "行政处罚决定书文号",
    "penalty_type": "处罚类别",
    "violation": "违法行为类型",
    "facts": "违法事实",
    "legal_basis": "处罚依据",
    "party_name": "行政相对人名称",
    "party_code": "统一社会信用代码",
    "outcome": "处罚内容",
    "fine_yuan": "罚款金额（元）",
    "agency": "处罚机关",
    "decided_on": "处罚决定日期",
    "images": "图片",
}


class PublicitySettings(StrictModel):
    """Who publishes, how its decisions are numbered, the legal basis per category, and the images' blurring."""

    agency: str = Field(
        default="上海市浦东新区城市管理行政执法局", min_length=1, description="处罚机关: the deciding agency."
    )
    decision_prefix: str = Field(
        default="浦城管罚", min_length=1, max_length=16, description="The agency's word in a decision number."
    )
    legal_basis: dict[str, str] = Field(
        default_factory=lambda: {
            "occupation": "《上海市市容环境卫生管理条例》第二十五条",
            "vehicle": "《上海市市容环境卫生管理条例》第二十七条",
        },
        description="处罚依据 per category, as the bureau's decisions cite it.",
    )
    blur: BlurSettings = BlurSettings()

    def decision_no(self, case_id: int, year: int) -> str:
        return f"{self.decision_prefix}〔{year}〕第{case_id:06d}号"


@dataclass(frozen=True)
class Decided:
    """A case to publish or to withdraw, with the time of its (last) decision or withdrawal."""

    case: AsCorrected
    party: Party | None
    at: datetime


def select_cases(s: Session) -> tuple[list[Decided], list[Decided]]:
    """(to publish, withdrawn): the decided cases never warned, by decision time."""
    warned = select(CaseTransition.case_id).where(CaseTransition.to_state == State.WARNED.value)
    last = func.max(CaseTransition.at)
    rows = s.execute(
        select(Case, Party, last, CaseTransition.to_state)
        .join(CaseTransition, CaseTransition.case_id == Case.id)
        .outerjoin(Party, Party.id == Case.party_id)
        .where(CaseTransition.to_state.in_([State.DECIDED.value, State.WITHDRAWN.value]), Case.id.not_in(warned))
        .group_by(Case.id, Party.id, CaseTransition.to_state)
    ).all()
    facts = {c.id: c for c in as_corrected(s, {c for c, *_ in rows})}  # published as the review corrected them
    decided = {c.id: Decided(facts[c.id], p, at) for c, p, at, to in rows if to == State.DECIDED}
    withdrawn = {c.id: Decided(facts[c.id], p, at) for c, p, at, to in rows if to == State.WITHDRAWN}
    publish = [d for d in decided.values() if State(d.case.state) in PUBLISHED_STATES]
    pulled = [withdrawn[i] for i in decided if decided[i].case.state == State.WITHDRAWN and i in withdrawn]
    return sorted(publish, key=lambda d: (d.at, d.case.id)), sorted(pulled, key=lambda d: (d.at, d.case.id))


def record(d: Decided, manifest: dict[str, Any], s: PublicitySettings, tz: ZoneInfo) -> dict[str, Any]:
    """The published fields of one decided case (`FIELDS`, images left empty for the exporter)."""
    case, party, local = d.case, d.party, d.at.astimezone(tz)
    seen = case.triggered_at.astimezone(tz)
    violation = _violation(case, manifest)
    point = manifest.get("point", {})
    place = f"{point.get('town', '')}{point.get('name', case.point_id)}"
    fine = case.fine_yuan or 0
    return {
        "decision_no": s.decision_no(case.id, local.year),
        "penalty_type": "罚款" if fine else "其他",
        "violation": violation,
        "facts": f"{seen:%Y年%m月%d日 %H:%M}，于{place}，{violation}（非现场执法设备记录，经审核确认）",
        "legal_basis": s.legal_basis.get(case.category, ""),
        "party_name": _party_name(party),
        "party_code": (party.licence_no or "") if party else "",
        "outcome": f"罚款人民币{fine}元" if fine else "不予罚款",
        "fine_yuan": fine,
        "agency": s.agency,
        "decided_on": local.date().isoformat(),
        "images": [],
    }


def _violation(case: AsCorrected, manifest: dict[str, Any]) -> str:
    """The evidence builder's zh-CN label of the subtype, unless the review corrected the subtype it labels."""
    label = (manifest.get("subtype_label") or {}).get("zh-CN")
    return label if label and case.subtype == case.recorded_subtype else SUBTYPE_ZH.get(case.subtype, case.subtype)


def _party_name(party: Party | None) -> str:
    # The shop or the company: a business's name is public; the operator's own name, a person's, is not.
    if party is None:
        return ""
    return (party.shop if party.kind == "merchant" else party.company) or ""


@dataclass
class ExportResult:
    """What `export` wrote: the records, the withdrawals, and the regions blurred in each image (not published)."""

    published: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[dict[str, str]] = field(default_factory=list)
    blurred: dict[str, list[tuple[int, int, int, int]]] = field(default_factory=dict)


def write(out: Path, result: ExportResult) -> None:
    """`publicity.csv` (with the zh-CN headers, UTF-8 with BOM for spreadsheets), `publicity.json` and
    `withdrawn.csv`."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "publicity.csv").open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS.values())
        writer.writerows([_cell(r[k]) for k in FIELDS] for r in result.published)
    with (out / "withdrawn.csv").open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["行政处罚决定书文号", "撤销公示日期"])
        writer.writerows([w["decision_no"], w["withdrawn_on"]] for w in result.withdrawn)
    doc = {"published": result.published, "withdrawn": result.withdrawn}
    (out / "publicity.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def _cell(value: Any) -> Any:
    return ";".join(value) if isinstance(value, list) else value


def image_name(case_id: int, label: str) -> str:
    """The exported file of a case's key frame, under `images/`."""
    return f"case-{case_id:06d}-{label}.jpg"


def remove_images(folder: Path, case_ids: Iterable[int]) -> None:
    """Delete the exported images of withdrawn decisions left from an earlier export."""
    for case_id in case_ids:
        for path in folder.glob(image_name(case_id, "*")):
            path.unlink()
