"""The notice (行政处罚事先告知书, DESIGN.md §3 requirement 8): a printable document telling the party the facts, the
evidence key frames, the proposed penalty with its legal basis, and until when, how and where to make a statement;
with its place in the case's hash chain, so the paper can be matched to the audit trail `feixian evidence verify`
checks. It exists once the case was notified: before that the route answers 409.

The proposed fine and the statement window are those the notice's own transition recorded (its hashed details), so
a later decision that lowers the fine never rewrites the notice the party received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from cases.lifecycle import State
from cases.models import CaseTransition, Party, User
from cases.procedure import is_major
from review_ui.casepage import EvidenceLayout, keyframe_times
from review_ui.dependencies import render, require_role, review_services
from review_ui.procedure_moves import STEP_ROLES
from review_ui.routers.cases import load_case, read_manifest

NoticeUser = Annotated[User, Depends(require_role(STEP_ROLES, "the notice"))]

router = APIRouter()


@dataclass(frozen=True)
class NoticeFacts:
    """What the notice states of the move that issued it.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    >>> steps = [CaseTransition(seq=2, to_state="filed", at=t, details={"fine_yuan": 500}, hash="a"),
    ...          CaseTransition(seq=3, to_state="notified", at=t, details={"statement_due_at": t.isoformat()},
    ...                         hash="b")]
    >>> facts = NoticeFacts.of(steps)
    >>> facts.fine_yuan, facts.transition.hash
    (500, 'b')
    >>> NoticeFacts.of(steps[:1]) is None
    True
    """

    transition: CaseTransition  # the (last) move to `notified`
    fine_yuan: int | None  # the proposed fine as it stood when the notice went out
    party_kind: str | None
    statement_due_at: datetime

    @classmethod
    def of(cls, history: Sequence[CaseTransition]) -> NoticeFacts | None:
        """From the case's transitions in chain order; None when it was never notified."""
        noticed = [i for i, tr in enumerate(history) if tr.to_state == State.NOTIFIED]
        if not noticed:
            return None
        upto = history[: noticed[-1] + 1]
        given = {k: v for tr in upto for k, v in (tr.details or {}).items()}  # the latest value of each fact
        return cls(
            upto[-1],
            given.get("fine_yuan"),
            given.get("party_kind"),
            datetime.fromisoformat(given["statement_due_at"]),
        )


@router.get("/cases/{case_id}/notice", include_in_schema=False)
def notice_page(request: Request, case_id: int, user: NoticeUser) -> HTMLResponse:
    services = review_services(request)
    case = services.cases.as_corrected([load_case(services, case_id)])[0]  # the notice states the facts as corrected
    facts = NoticeFacts.of(services.cases.history(case_id))
    if facts is None:
        return render(request, "error.html", user, status_code=409, message_key="notice.not_yet")
    manifest = read_manifest(services, user, case)
    with services.cases.sessions() as s:
        party = s.get(Party, case.party_id) if case.party_id else None
    return render(
        request,
        "notice.html",
        user,
        case=case,
        facts=facts,
        party=party,
        major=is_major(facts.fine_yuan, facts.party_kind),
        layout=EvidenceLayout.of(case.evidence, keyframe_times(manifest.data)),
        manifest_ok=manifest.hash_ok,
        legal_basis=services.publicity.legal_basis.get(case.category, ""),
        agency=services.publicity.agency,
    )
