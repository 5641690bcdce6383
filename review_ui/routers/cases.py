"""The case page, its review decision and its evidence files.

Every read of stored evidence (the manifest shown on the page, each file fetched) is logged against the
reader (legal requirement 5), and files are served no-store so that each viewing comes back here.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cases.claims import Claim
from cases.corrections import SUBTYPES, CorrectionError, corrected, correction
from cases.lifecycle import ForbiddenTransitionError, Role, State, TransitionError
from cases.manifest import ManifestError, parse_manifest, sha256_hex
from cases.models import Case, User
from cases.service import CaseNotFoundError
from cases.store import ObjectNotFoundError
from review_ui.casepage import (
    MANIFEST,
    EvidenceLayout,
    ZoneOverlay,
    clip_fps,
    frame_size,
    keyframe_times,
    neighbours,
    zone_overlay,
)
from review_ui.dependencies import FormUser, MediaUser, PageUser, message, render, review_services
from review_ui.procedure_moves import offered
from review_ui.ranges import range_response
from review_ui.routers.queue import queue_ids
from review_ui.services import ReviewServices
from review_ui.void_reasons import VOID_REASONS, reason_text

MAX_REASON = 500
# The evidence review: the only decisions this page takes (later stages have their own tools).
DECISIONS = (State.CONFIRMED, State.VOIDED)

router = APIRouter()


@dataclass(frozen=True)
class _Manifest:
    data: dict[str, Any] | None  # None when the object is missing or not a JSON object
    text: str | None  # pretty-printed
    hash_ok: bool


def load_case(services: ReviewServices, case_id: int) -> Case:
    try:
        return services.cases.get(case_id)
    except CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id}") from None


def decisions_for(services: ReviewServices, user: User, case: Case) -> list[str]:
    """The review decisions this user may take on this case, as the service's lifecycle says.
    Only detected cases are decided here; later stages (e.g. a legal reviewer voiding a confirmed
    case) belong to their own pages."""
    if case.state != State.DETECTED:
        return []
    try:
        allowed = services.cases.lifecycle.next_states(State(case.state), Role(user.role))
    except ValueError:
        return []
    return [s.value for s in DECISIONS if s in allowed]


def read_manifest(services: ReviewServices, user: User, case: Case) -> _Manifest:
    try:
        raw = services.store.get(case.manifest_key)
    except ObjectNotFoundError:
        return _Manifest(None, None, False)
    services.cases.log_access(user.username, case.manifest_key, case_id=case.id)
    hash_ok = sha256_hex(raw) == case.manifest_sha256
    try:
        data = parse_manifest(raw)
    except ManifestError:
        return _Manifest(None, None, hash_ok)
    return _Manifest(data, json.dumps(data, indent=2, ensure_ascii=False), hash_ok)


def holder_name(services: ReviewServices, claim: Claim) -> str:
    holder = services.users.get_user(claim.username)
    return f"{holder.display_name}（{claim.username}）" if holder else claim.username


def zones_over_frame(services: ReviewServices, user: User, case: Case) -> ZoneOverlay | None:
    """The point's zones scaled to a key frame (every frame of the clip has its size); none when the point is no
    longer configured or the frame cannot be read."""
    point = services.points.get(case.point_id)
    frame = next((kf.original for kf in EvidenceLayout.of(case.evidence, {}).keyframes if kf.original), None)
    if point is None or frame is None:
        return None
    try:
        image = services.store.get(case.evidence[frame])
    except ObjectNotFoundError:
        return None
    services.cases.log_access(user.username, case.evidence[frame], case_id=case.id)
    size = frame_size(image)
    return zone_overlay(point.zones, size, case.zone_id) if size else None


def review_refusal(request: Request, user: User, case: Case, allowed: bool) -> Response | None:
    """Why `user` may not act on `case` in its evidence review now, as the answer to give: back to the case page
    with a message when it was decided meanwhile, 403 when not `allowed` (the role), the page with 409 while another
    reviewer holds the case. None when they may: their claim is then taken or renewed, so of two reviewers acting
    on a case nobody held, only one gets it."""
    services = review_services(request)
    if case.state != State.DETECTED:
        message(request, "decision_error", "error.already_decided")
        return RedirectResponse(f"/cases/{case.id}", status_code=303)
    if not allowed:
        raise HTTPException(403, f"role {user.role} may not review a {case.state} case")
    claim = services.cases.claims.claim(case.id, user.username)
    if claim.username != user.username:
        return show_case(request, user, case, claim, status_code=409)
    return None


def show_case(
    request: Request,
    user: User,
    case: Case,
    claim: Claim | None,
    status_code: int = 200,
    refusal: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The case page; `claim` is whoever holds the case now (None: nobody), and only its holder may decide;
    `refusal` is a procedure move just refused (`review_ui.routers.procedure`), shown in its panel."""
    services = review_services(request)
    prev_id, next_id = neighbours(queue_ids(request, user), case.id)
    zones = zones_over_frame(services, user, case)
    manifest = read_manifest(services, user, case)
    mine = claim is None or claim.username == user.username
    layout = EvidenceLayout.of(case.evidence, keyframe_times(manifest.data))
    history = services.cases.history(case.id)
    return render(
        request,
        "case.html",
        user,
        status_code=status_code,
        case=case,
        layout=layout,
        zones=zones,
        clip_fps=clip_fps(manifest.data),
        manifest=manifest,
        history=history,
        corrections=[correction(tr.details) for tr in history],
        facts=corrected(case, (tr.details for tr in history)),
        subtypes=SUBTYPES.get(case.category, ()),
        correction_error=request.session.pop("correction_error", None),
        decisions=decisions_for(services, user, case) if mine else [],
        claim=claim,
        claim_holder=holder_name(services, claim) if claim else "",
        void_reasons=VOID_REASONS,
        prev_id=prev_id,
        next_id=next_id,
        error=request.session.pop("decision_error", None),
        moves=offered(
            services.cases.lifecycle, services.cases.procedure, case.state, user.role, services.cases.clock()
        ),
        refusal=refusal,
    )


@router.get("/cases/{case_id}", include_in_schema=False)
def case_page(request: Request, case_id: int, user: PageUser) -> HTMLResponse:
    services = review_services(request)
    case = load_case(services, case_id)
    # Opening a case one may decide claims it (or renews one's claim); anyone else only sees who holds it.
    if decisions_for(services, user, case):
        claim: Claim | None = services.cases.claims.claim(case_id, user.username)
    else:
        claim = services.cases.claims.holders([case_id]).get(case_id)
    return show_case(request, user, case, claim)


@router.post("/cases/{case_id}/decision", include_in_schema=False)
def decide(
    request: Request,
    case_id: int,
    user: FormUser,
    decision: str = Form(),
    reason: str = Form(default=""),
    reason_number: str = Form(default=""),
) -> Response:
    services = review_services(request)
    case = load_case(services, case_id)
    back = RedirectResponse(f"/cases/{case_id}", status_code=303)
    if refused := review_refusal(request, user, case, decision in decisions_for(services, user, case)):
        return refused
    reason = reason_text(reason_number, reason) if decision == State.VOIDED else reason.strip()
    if decision == State.VOIDED and not reason:
        message(request, "decision_error", "error.reason_required")
        return back
    if len(reason) > MAX_REASON:
        message(request, "decision_error", "error.reason_too_long", n=MAX_REASON)
        return back
    # Asked before the case leaves the queue, so "next" is the case after it.
    _, next_id = neighbours(queue_ids(request, user), case_id)
    try:
        services.cases.transition(case_id, decision, actor=user.username, reason=reason or None)
    except ForbiddenTransitionError as e:
        raise HTTPException(403, str(e)) from e
    except TransitionError as e:
        message(request, "decision_error", "error.invalid_transition", detail=str(e))
        return back
    services.cases.claims.release(case_id, user.username)
    message(request, "flash", "flash.confirmed" if decision == State.CONFIRMED else "flash.voided", id=case_id)
    return RedirectResponse(f"/cases/{next_id}" if next_id is not None else "/queue", status_code=303)


@router.post("/cases/{case_id}/correction", include_in_schema=False)
def correct(
    request: Request, case_id: int, user: FormUser, field: str = Form(), value: str = Form(default="")
) -> Response:
    """The reviewer's correction of the plate text or the subtype, recorded in the case's audit chain
    (`cases.corrections`); a refused value leaves the case as it was and says why on the page."""
    services = review_services(request)
    case = load_case(services, case_id)
    if refused := review_refusal(request, user, case, bool(decisions_for(services, user, case))):
        return refused
    try:
        old, new = services.cases.correct(case_id, field, value, actor=user.username)
    except ForbiddenTransitionError as e:
        raise HTTPException(403, str(e)) from e
    except (CorrectionError, TransitionError) as e:
        message(request, "correction_error", "error.correction", detail=str(e))
    else:
        if new != old:
            message(request, "flash", f"flash.corrected_{field}", old=old or "—", new=new)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/cases/{case_id}/evidence/{name:path}", include_in_schema=False)
def evidence(request: Request, case_id: int, name: str, user: MediaUser) -> Response:
    services = review_services(request)
    case = load_case(services, case_id)
    # Only the objects a case names can be read here, never an arbitrary store key.
    key = case.evidence.get(name) or (case.manifest_key if name == MANIFEST else None)
    if not key:
        raise HTTPException(404, f"case {case_id} has no evidence {name!r}")
    try:
        data = services.store.get(key)
    except ObjectNotFoundError:
        raise HTTPException(404, f"evidence object missing: {key}") from None
    services.cases.log_access(user.username, key, case_id=case.id)
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    # no-store: every viewing comes back here and so into the access log (legal requirement 5).
    headers = {"Cache-Control": "private, no-store"}
    return range_response(data, media_type, request.headers.get("range"), headers)
