"""The parties pages: every merchant and vehicle with its risk grade (分级分类监管), and one party's page with its
earlier cases and whether its next listed violation would be a first minor one (首违不罚). Read-only: parties come
from `feixian parties import`; a case's party is picked with `feixian cases party`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from cases.lifecycle import Role
from cases.models import User
from cases.parties import PartyService
from review_ui.dependencies import render, require_role, review_services

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
