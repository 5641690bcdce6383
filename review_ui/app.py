"""The reviewers' web app: sign-in, the queue of detected cases, the case page and the decision.

Server-rendered (Jinja2) pages in Simplified Chinese by default with an English switch; every asset is
served from `review_ui/static`, so the app works on a network without internet.

>>> services = ReviewServices(cases=CaseService(sessions), users=UserService(sessions),
...                           store=LocalObjectStore(data_dir / "evidence"),
...                           secret_key=os.environ["FEIXIAN_SECRET_KEY"], points={p.id: p for p in cfg.points})
...                           # doctest: +SKIP
>>> app = create_app(services)  # doctest: +SKIP
>>> app.include_router(make_push_router(...))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from cases.lifecycle import ForbiddenTransitionError, Role, State, TransitionError
from cases.manifest import ManifestError, parse_manifest, sha256_hex
from cases.models import Case, User
from cases.service import CaseNotFoundError, CaseService
from cases.store import ObjectNotFoundError, ObjectStore
from cases.users import UserService
from review_ui.auth import (
    SESSION_LANG,
    csrf_token,
    csrf_valid,
    safe_next,
    session_generation,
    session_username,
    sign_in,
    sign_out,
)
from review_ui.casepage import MANIFEST, EvidenceLayout, keyframe_times, neighbours
from review_ui.i18n import LANGUAGES, Translator, pick_language
from review_ui.ops import OpsFeed, make_ops_router
from review_ui.ranges import range_response
from review_ui.security import SecurityHeaders

_HERE = Path(__file__).parent
MAX_REASON = 500
# The evidence review: the only decisions this page takes (later stages have their own tools).
DECISIONS = (State.CONFIRMED, State.VOIDED)


class PointLabel(Protocol):
    """What the UI shows of a point (`feixian.config.Point` fits)."""

    name: str
    town: str


@dataclass(frozen=True)
class ReviewServices:
    """Everything the review UI needs, built by the composition root.

    `secret_key` signs the session cookie (at least 32 characters); `points` maps point ids to their
    names for display; `timezone` is the zone times are shown in; `https_only` marks the cookie Secure
    (set it behind TLS); `queue_limit` caps the rows on the queue page; `clock` gives "now" for the
    queue's waiting times.
    """

    cases: CaseService
    users: UserService
    store: ObjectStore
    secret_key: str
    points: Mapping[str, PointLabel] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    https_only: bool = False
    queue_limit: int = 500
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ops: OpsFeed | None = None  # the live figures of the ops page (`review_ui.ops`); without them there is none

    def __post_init__(self) -> None:
        if len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters (e.g. secrets.token_hex(32))")
        if self.queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not on the first page


class _LoginRequired(Exception):
    """A page asked for without a signed-in, active user: answered with a redirect to sign in."""


@dataclass(frozen=True)
class _Manifest:
    data: dict[str, Any] | None  # None when the object is missing or not a JSON object
    text: str | None  # pretty-printed
    hash_ok: bool


def create_app(services: ReviewServices) -> FastAPI:
    """The review UI as a FastAPI app; the composition root mounts the ingest router on it too."""
    tz = ZoneInfo(services.timezone)
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = lambda at: at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    env.filters["percent"] = lambda x: f"{x:.0%}"

    app = FastAPI(title="feixian", docs_url=None, redoc_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=services.secret_key,
        session_cookie="feixian_session",
        max_age=12 * 60 * 60,  # one working day
        same_site="strict",
        https_only=services.https_only,
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    def signed_in(request: Request) -> User | None:
        username = session_username(request)
        user = services.users.get_user(username) if username else None
        # A disabled account, or one whose password was reset after this session began, is signed out.
        if user is None or not user.active or session_generation(request) != user.session_generation:
            return None
        return user

    def page_user(request: Request) -> User:
        user = signed_in(request)
        if user is None:
            sign_out(request)
            raise _LoginRequired()
        return user

    def render(
        request: Request, template: str, user: User | None, status_code: int = 200, **context: object
    ) -> HTMLResponse:
        lang = pick_language(request.query_params.get("lang"), request.session.get(SESSION_LANG))
        request.session[SESSION_LANG] = lang
        t = Translator(lang)

        def point_label(point_id: str) -> str:
            point = services.points.get(point_id)
            return t("point.label", name=point.name, town=point.town) if point else point_id

        other = next(code for code in LANGUAGES if code != lang)
        switch = request.url.include_query_params(lang=other)
        page = env.get_template(template).render(
            t=t,
            lang=lang,
            user=user,
            csrf=csrf_token(request),
            flash=request.session.pop("flash", None),
            other_lang=other,
            other_lang_url=f"{switch.path}?{switch.query}",
            point_label=point_label,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)

    def message(request: Request, slot: str, key: str, **values: object) -> None:
        # Shown once on the next page (post/redirect/get), in whatever language that page uses.
        request.session[slot] = {"key": key, "values": values}

    def queue_ids() -> list[int]:
        return [c.id for c in services.cases.list_cases(state=State.DETECTED, limit=services.queue_limit)]

    def load_case(case_id: int) -> Case:
        try:
            return services.cases.get(case_id)
        except CaseNotFoundError:
            raise HTTPException(404, f"no case {case_id}") from None

    def decisions_for(user: User, case: Case) -> list[str]:
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

    def read_manifest(user: User, case: Case) -> _Manifest:
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

    @app.exception_handler(_LoginRequired)
    async def _to_login(request: Request, exc: _LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
        # Browsers navigating get a page; the push API's clients, <video> and <img> get JSON.
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        key = {401: "login.required", 403: "error.forbidden", 404: "error.not_found"}.get(
            exc.status_code, "error.title"
        )
        return render(request, "error.html", signed_in(request), status_code=exc.status_code, message_key=key)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/queue") -> Response:
        if signed_in(request):
            return RedirectResponse(safe_next(next), status_code=303)
        return render(request, "login.html", None, next=safe_next(next), problem=None)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        username: str = Form(max_length=64),
        password: str = Form(max_length=256),
        csrf_token: str = Form(default=""),
        next: str = Form(default="/queue"),
    ) -> Response:
        if not csrf_valid(request, csrf_token):
            return render(request, "login.html", None, status_code=400, next=safe_next(next), problem="error.csrf")
        user = services.users.authenticate(username, password)
        if user is None:
            return render(request, "login.html", None, status_code=401, next=safe_next(next), problem="login.failed")
        sign_in(request, user.username, user.session_generation)
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: str = Form(default="")) -> RedirectResponse:
        if csrf_valid(request, csrf_token):
            sign_out(request)
        return RedirectResponse("/login", status_code=303)

    @app.get("/queue", include_in_schema=False)
    def queue(request: Request) -> HTMLResponse:
        user = page_user(request)
        cases = services.cases.list_cases(state=State.DETECTED, limit=services.queue_limit)
        total = services.cases.count_cases(state=State.DETECTED)
        return render(request, "queue.html", user, cases=cases, total=total, now=services.clock())

    @app.get("/cases/{case_id}", include_in_schema=False)
    def case_page(request: Request, case_id: int) -> HTMLResponse:
        user = page_user(request)
        case = load_case(case_id)
        prev_id, next_id = neighbours(queue_ids(), case_id)
        manifest = read_manifest(user, case)
        return render(
            request,
            "case.html",
            user,
            case=case,
            layout=EvidenceLayout.of(case.evidence, keyframe_times(manifest.data)),
            manifest=manifest,
            history=services.cases.history(case_id),
            decisions=decisions_for(user, case),
            prev_id=prev_id,
            next_id=next_id,
            error=request.session.pop("decision_error", None),
        )

    @app.post("/cases/{case_id}/decision", include_in_schema=False)
    def decide(
        request: Request,
        case_id: int,
        decision: str = Form(),
        reason: str = Form(default=""),
        csrf_token: str = Form(default=""),
    ) -> RedirectResponse:
        user = page_user(request)
        if not csrf_valid(request, csrf_token):
            raise HTTPException(403, "CSRF token missing or wrong")
        case = load_case(case_id)
        back = RedirectResponse(f"/cases/{case_id}", status_code=303)
        if case.state != State.DETECTED:
            message(request, "decision_error", "error.already_decided")
            return back
        if decision not in decisions_for(user, case):
            raise HTTPException(403, f"role {user.role} may not set {decision!r} on a {case.state} case")
        reason = reason.strip()
        if decision == State.VOIDED and not reason:
            message(request, "decision_error", "error.reason_required")
            return back
        if len(reason) > MAX_REASON:
            message(request, "decision_error", "error.reason_too_long", n=MAX_REASON)
            return back
        # Asked before the case leaves the queue, so "next" is the case after it.
        _, next_id = neighbours(queue_ids(), case_id)
        try:
            services.cases.transition(case_id, decision, actor=user.username, reason=reason or None)
        except ForbiddenTransitionError as e:
            raise HTTPException(403, str(e)) from e
        except TransitionError as e:
            message(request, "decision_error", "error.invalid_transition", detail=str(e))
            return back
        message(request, "flash", "flash.confirmed" if decision == State.CONFIRMED else "flash.voided", id=case_id)
        return RedirectResponse(f"/cases/{next_id}" if next_id is not None else "/queue", status_code=303)

    @app.get("/cases/{case_id}/evidence/{name:path}", include_in_schema=False)
    def evidence(request: Request, case_id: int, name: str) -> Response:
        user = signed_in(request)
        if user is None:
            raise HTTPException(401, "sign in first")
        case = load_case(case_id)
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

    if services.ops is not None:
        app.include_router(make_ops_router(services.ops, render, page_user, services.clock))
    return app
