"""The reviewers' web app: sign-in, the queue of detected cases, the case page and the decision.

Server-rendered (Jinja2) pages in Simplified Chinese by default with an English switch; every asset is
served from `review_ui/static`, so the app works on a network without internet. The pages live in
`review_ui.routers` (and the ops page in `review_ui.ops`); what they share, in `review_ui.dependencies`.

>>> services = ReviewServices(cases=CaseService(sessions), users=UserService(sessions),
...                           store=LocalObjectStore(data_dir / "evidence"),
...                           secret_key=os.environ["FEIXIAN_SECRET_KEY"], points={p.id: p for p in cfg.points})
...                           # doctest: +SKIP
>>> app = create_app(services)  # doctest: +SKIP
>>> app.include_router(make_push_router(...))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from review_ui.dependencies import LoginRequired, render, signed_in, templates
from review_ui.ops import make_ops_router
from review_ui.routers import admin, auth, cases, notice, parties, procedure, publicity, queue, supervisor, work
from review_ui.security import SecurityHeaders
from review_ui.services import ReviewServices

__all__ = ["ReviewServices", "create_app"]

_HERE = Path(__file__).parent


def create_app(services: ReviewServices) -> FastAPI:
    """The review UI as a FastAPI app; the composition root mounts the ingest router on it too."""
    app = FastAPI(title="feixian", docs_url=None, redoc_url=None)
    app.state.review_services = services
    app.state.templates = templates(services.timezone)
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
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(StarletteHTTPException, _error_page)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in (
        auth.router,
        queue.router,
        cases.router,
        parties.router,
        supervisor.router,
        admin.router,
        publicity.router,
        procedure.router,
        work.router,
        notice.router,
    ):
        app.include_router(router)
    if services.ops is not None:
        app.include_router(make_ops_router(services.ops, services.clock))
    return app


async def _to_login(request: Request, exc: LoginRequired) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
    # Browsers navigating get a page; the push API's clients, <video> and <img> get JSON.
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    key = {401: "login.required", 403: "error.forbidden", 404: "error.not_found"}.get(exc.status_code, "error.title")
    return render(request, "error.html", signed_in(request), status_code=exc.status_code, message_key=key)
