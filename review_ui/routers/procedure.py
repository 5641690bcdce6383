"""The penalty procedure driven from the case page: a move its procedure panel offered (`review_ui.procedure_moves`),
taken by `CaseService.transition`, with the checks `feixian cases move` applies and nothing of its own.

A refused move answers with the case page and the refusal in the panel, zh-CN first and English second, and changes
nothing: 422 for a form that does not parse, 409 for a move the case's state or the procedure's conditions refuse
(a decision inside the statement window without a waiver, a major fine noticed without legal review...), 403 for a
role that may take no case step or not this one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from cases.lifecycle import ForbiddenTransitionError, State, TransitionError
from cases.models import User
from cases.procedure import Move, PartyKind
from review_ui.auth import SESSION_LANG
from review_ui.dependencies import form_user, message, review_services
from review_ui.i18n import Translator, pick_language
from review_ui.procedure_moves import STEP_ROLES
from review_ui.routers.cases import MAX_REASON, load_case, show_case

# Far above any fine of the matters on the list, and inside the column's 32-bit integer.
MAX_FINE_YUAN = 10_000_000
INVALID, REFUSED = 422, 409

router = APIRouter()


def _case_step_user(user: Annotated[User, Depends(form_user)]) -> User:
    if user.role not in STEP_ROLES:
        raise HTTPException(403, f"role {user.role} takes no case steps")
    return user


CaseStepUser = Annotated[User, Depends(_case_step_user)]


class MoveRequest(BaseModel):
    """The panel's form as `feixian cases move` takes it: the target, the reason, and the move's facts.

    >>> MoveRequest.model_validate({"to": "notified", "fine_yuan": "200", "party_kind": None}).move()
    Move(fine_yuan=200, party_kind=None, waived=False)
    """

    to: State = Field(description="the target state, named as in cases.lifecycle")
    reason: str = Field(default="", max_length=MAX_REASON, description="why; required on some moves (voiding...)")
    fine_yuan: int | None = Field(default=None, ge=0, le=MAX_FINE_YUAN, description="proposed or decided fine")
    party_kind: PartyKind | None = Field(default=None, description="judges whether the fine is major")
    waived: bool = Field(default=False, description="the party waived the rest of the statement window")

    def move(self) -> Move:
        return Move(self.fine_yuan, self.party_kind, self.waived)


def _refuse(request: Request, user: User, case_id: int, status: int, key: str, **values: Any) -> Response:
    services = review_services(request)
    case = load_case(services, case_id)
    claim = services.cases.claims.holders([case_id]).get(case_id)
    return show_case(request, user, case, claim, status_code=status, refusal={"key": key, "values": values})


@router.post("/cases/{case_id}/move", include_in_schema=False)
def move_case(
    request: Request,
    case_id: int,
    user: CaseStepUser,
    to: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    fine: Annotated[str, Form()] = "",
    party_kind: Annotated[str, Form()] = "",
    waived: Annotated[str, Form()] = "",
) -> Response:
    services = review_services(request)
    case = load_case(services, case_id)
    try:
        asked = MoveRequest.model_validate(
            {"to": to, "reason": reason.strip(), "fine_yuan": fine.strip() or None, "party_kind": party_kind or None}
            | {"waived": bool(waived)}
        )
    except ValidationError as e:
        field = str(e.errors()[0]["loc"][0])
        return _refuse(request, user, case_id, INVALID, f"procedure.bad.{field}", max=MAX_FINE_YUAN, n=MAX_REASON)
    if case.state == State.DETECTED:
        # The evidence review is decided on its own card, under its claim: never around it.
        return _refuse(request, user, case_id, REFUSED, "procedure.review_first")
    try:
        services.cases.transition(case_id, asked.to, user.username, asked.reason or None, asked.move())
    except ForbiddenTransitionError as e:
        raise HTTPException(403, str(e)) from e
    except TransitionError as e:
        return _refuse(request, user, case_id, REFUSED, "procedure.refused", detail=str(e))
    t = Translator(pick_language(None, request.session.get(SESSION_LANG)))
    message(request, "flash", "flash.moved", id=case_id, state=t.label("state", asked.to))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
