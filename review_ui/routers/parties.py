"""The parties pages: every merchant and vehicle with its risk grade (分级分类监管), one party's page with its
earlier cases and whether its next listed violation would be a first minor one (首违不罚), and a case's party page,
where a reviewer picks or confirms it among the candidates (the vehicle of its plate, the merchants of its zone),
as `feixian cases party` does. Parties themselves come from `feixian parties import`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cases.lifecycle import Role
from cases.models import User
from cases.parties import PICKERS, PartyError, PartyService
from review_ui.dependencies import FormUser, message, render, require_role, review_services
from review_ui.routers.cases import load_case

# Those who judge cases see their parties; ops and admin keep cameras and accounts, not cases.
PARTY_ROLES = frozenset({Role.REVIEWER.value, Role.LEGAL.value, Role.SUPERVISOR.value})
PartyUser = Annotated[User, Depends(require_role(PARTY_ROLES, "the parties"))]

router = APIRouter()


def _parties(request: Request) -> PartyService:
    parties = review_services(request).parties
    if parties is None:
        raise HTTPException(404, "no parties here")
    return parties


@router.get("/parties", include_in_schema=False)
def parties_page(request: Request, user: PartyUser) -> HTMLResponse:
    profiles = _parties(request).profiles(review_services(request).clock())
    return render(request, "parties.html", user, profiles=profiles)


@router.get("/parties/{party_id}", include_in_schema=False)
def party_page(request: Request, party_id: int, user: PartyUser) -> HTMLResponse:
    parties = _parties(request)
    found = parties.profiles(review_services(request).clock(), party_id)
    if not found:
        raise HTTPException(404, f"no party {party_id}")
    return render(request, "party.html", user, p=found[0], settings=parties.settings)


@router.get("/cases/{case_id}/party", include_in_schema=False)
def case_party_page(request: Request, case_id: int, user: PartyUser) -> HTMLResponse:
    parties, services = _parties(request), review_services(request)
    case = load_case(services, case_id)
    current = parties.profiles(services.clock(), case.party_id) if case.party_id else []
    return render(
        request,
        "case_party.html",
        user,
        case=case,
        current=current[0].party if current else None,
        candidates=parties.candidates(case_id),
        error=request.session.pop("party_error", None),
    )


@router.post("/cases/{case_id}/party", include_in_schema=False)
def pick_party(request: Request, case_id: int, user: FormUser, party_id: int = Form()) -> RedirectResponse:
    parties = _parties(request)
    if user.role not in PICKERS:
        raise HTTPException(403, f"role {user.role} may not bind a case's party")
    load_case(review_services(request), case_id)
    try:
        parties.assign(case_id, party_id, user.username)
    except PartyError as e:
        message(request, "party_error", "error.invalid_transition", detail=str(e))
        return RedirectResponse(f"/cases/{case_id}/party", status_code=303)
    message(request, "flash", "flash.party_bound", id=case_id)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
