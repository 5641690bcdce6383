"""The parties pages: every merchant and vehicle with its risk grade (分级分类监管), one party's page with its
earlier cases, whether its next listed violation would be a first minor one (首违不罚) and every change of its record,
and a case's party page, where a reviewer picks or confirms it among the candidates (the vehicle of its plate, the
merchants of its zone), as `feixian cases party` does.

Parties come from `feixian parties import` or the forms here (add, edit), which check a party as the import checks
a CSV row and record each change with actor and time (`cases.party_edits`). Who may do what:
- reviewers, legal reviewers and supervisors see the parties and pick a case's party (`PARTY_ROLES`, `PICKERS`):
  the evidence review names who the evidence shows;
- legal reviewers and supervisors keep the records (`MANAGERS`): the notice goes to the contact on record and the
  legal reviewer answers for the notice (DESIGN.md §3, legal requirement 8), the supervisor may do any case step; a
  reviewer who could also rewrite a party's record would both pick the party and define it;
- ops and admin keep cameras and accounts, not cases: 403 on every page here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from cases.lifecycle import Role
from cases.models import User
from cases.parties import PICKERS, PartyError, PartyService
from cases.party_edits import MANAGERS, PartyEditor
from cases.party_import import ROWS, Kind, PartyFieldsError
from review_ui.dependencies import FormUser, message, render, require_role, review_services
from review_ui.routers.cases import load_case

# Those who judge cases see their parties; ops and admin keep cameras and accounts, not cases.
PARTY_ROLES = frozenset({Role.REVIEWER.value, Role.LEGAL.value, Role.SUPERVISOR.value})
PartyUser = Annotated[User, Depends(require_role(PARTY_ROLES, "the parties"))]
ManagerUser = Annotated[User, Depends(require_role({r.value for r in MANAGERS}, "the parties' records"))]


class PartyForm(BaseModel):
    """The party form as posted: every field of either kind; `cases.party_import` checks those of the kind at hand."""

    kind: Literal["merchant", "vehicle"] = "merchant"  # a new party's; an edit keeps the stored kind
    name: str = ""
    shop: str = ""
    licence_no: str = ""
    contact: str = ""
    point_id: str = ""
    zones: str = ""  # separated by ";", as in the CSV
    plate: str = ""
    company: str = ""

    def fields(self, kind: Kind) -> dict[str, str]:
        return {name: getattr(self, name) for name in ROWS[kind].model_fields if name != "line"}


router = APIRouter()


def _parties(request: Request) -> PartyService:
    parties = review_services(request).parties
    if parties is None:
        raise HTTPException(404, "no parties here")
    return parties


def _editor(request: Request) -> PartyEditor:
    points = review_services(request).points.values()
    return PartyEditor(_parties(request), {p.id: {z.id for z in p.zones} for p in points})


def _form_page(
    request: Request, user: User, kind: Kind, values: dict[str, str], party_id: int | None = None, **extra: object
) -> HTMLResponse:
    zones = {p.id: sorted(z.id for z in p.zones) for p in review_services(request).points.values()}
    zone_list = "; ".join(f"{point}: {', '.join(ids)}" for point, ids in zones.items())
    context = {"errors": {}, "party_name": ""} | extra
    return render(
        request,
        "party_form.html",
        user,
        kind=kind,
        values=values,
        party_id=party_id,
        zones=zones,
        zone_list=zone_list,
        **context,
    )


def _refused(request: Request, user: User, kind: Kind, form: PartyForm, e: PartyFieldsError, **extra) -> HTMLResponse:
    return _form_page(request, user, kind, form.fields(kind), errors=e.errors, status_code=400, **extra)


@router.get("/parties", include_in_schema=False)
def parties_page(request: Request, user: PartyUser) -> HTMLResponse:
    profiles = _parties(request).profiles(review_services(request).clock())
    return render(request, "parties.html", user, profiles=profiles, manager=user.role in MANAGERS)


# Before /parties/{party_id}, which would otherwise take "new" for an id.
@router.get("/parties/new", include_in_schema=False)
def new_party_page(request: Request, user: ManagerUser, kind: Kind = "merchant") -> HTMLResponse:
    return _form_page(request, user, kind, PartyForm().fields(kind))


@router.post("/parties", include_in_schema=False)
def add_party(request: Request, user: FormUser, form: Annotated[PartyForm, Form()]) -> Response:
    editor = _editor(request)
    if user.role not in MANAGERS:
        raise HTTPException(403, f"role {user.role} may not keep the parties' records")
    try:
        party_id = editor.add(form.kind, form.fields(form.kind), user.username, review_services(request).clock())
    except PartyFieldsError as e:
        return _refused(request, user, form.kind, form, e)
    except PartyError as e:  # the account changed since this request was let in
        raise HTTPException(403, str(e)) from e
    message(request, "flash", "flash.party_saved", id=party_id)
    return RedirectResponse(f"/parties/{party_id}", status_code=303)


@router.get("/parties/{party_id}", include_in_schema=False)
def party_page(request: Request, party_id: int, user: PartyUser) -> HTMLResponse:
    parties, editor = _parties(request), _editor(request)
    found = parties.profiles(review_services(request).clock(), party_id)
    if not found:
        raise HTTPException(404, f"no party {party_id}")
    _, values = editor.form_fields(party_id)
    return render(
        request,
        "party.html",
        user,
        p=found[0],
        settings=parties.settings,
        place=values,
        changes=editor.changes(party_id),
        manager=user.role in MANAGERS,
    )


@router.get("/parties/{party_id}/edit", include_in_schema=False)
def edit_party_page(request: Request, party_id: int, user: ManagerUser) -> HTMLResponse:
    try:
        kind, values = _editor(request).form_fields(party_id)
    except PartyError as e:
        raise HTTPException(404, f"no party {party_id}") from e
    return _form_page(request, user, kind, values, party_id, party_name=values.get("name") or values["company"])


@router.post("/parties/{party_id}", include_in_schema=False)
def edit_party(request: Request, party_id: int, user: FormUser, form: Annotated[PartyForm, Form()]) -> Response:
    editor = _editor(request)
    if user.role not in MANAGERS:
        raise HTTPException(403, f"role {user.role} may not keep the parties' records")
    try:
        kind, stored = editor.form_fields(party_id)
    except PartyError as e:
        raise HTTPException(404, f"no party {party_id}") from e
    try:
        editor.edit(party_id, form.fields(kind), user.username, review_services(request).clock())
    except PartyFieldsError as e:
        name = stored.get("name") or stored["company"]
        return _refused(request, user, kind, form, e, party_id=party_id, party_name=name)
    except PartyError as e:  # the account changed since this request was let in
        raise HTTPException(403, str(e)) from e
    message(request, "flash", "flash.party_saved", id=party_id)
    return RedirectResponse(f"/parties/{party_id}", status_code=303)


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
