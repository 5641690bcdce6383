"""What every router of the review UI shares: its services, the signed-in user, the role and CSRF checks,
and rendering a page in the reader's language (zh-CN first).

`create_app` keeps the services and the templates on `app.state`; the routes take them through FastAPI
dependencies, so a router is a plain module (`review_ui.routers`) with nothing to be wired by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from cases.models import User
from review_ui.auth import SESSION_LANG, csrf_token, csrf_valid, session_generation, session_username, sign_out
from review_ui.i18n import LANGUAGES, Translator, pick_language
from review_ui.services import ReviewServices

_TEMPLATES = Path(__file__).parent / "templates"


class LoginRequired(Exception):
    """A page asked for without a signed-in, active user: answered with a redirect to sign in."""


def templates(timezone: str) -> Environment:
    """The page templates, showing times in `timezone`."""
    tz = ZoneInfo(timezone)
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = lambda at: at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    env.filters["percent"] = lambda x: f"{x:.0%}"
    return env


def review_services(request: Request) -> ReviewServices:
    return request.app.state.review_services


def signed_in(request: Request) -> User | None:
    """The session's user, or None when nobody is signed in or the session no longer holds."""
    username = session_username(request)
    user = review_services(request).users.get_user(username) if username else None
    # A disabled account, or one whose password was reset after this session began, is signed out.
    if user is None or not user.active or session_generation(request) != user.session_generation:
        return None
    return user


def page_user(request: Request) -> User:
    """The signed-in user of a page; anyone else is sent to sign in (and back here after)."""
    user = signed_in(request)
    if user is None:
        sign_out(request)
        raise LoginRequired()
    return user


PageUser = Annotated[User, Depends(page_user)]


def media_user(request: Request) -> User:
    """The signed-in user of an evidence file (a <video> or <img> cannot follow a sign-in page): else 401."""
    user = signed_in(request)
    if user is None:
        raise HTTPException(401, "sign in first")
    return user


MediaUser = Annotated[User, Depends(media_user)]


def require_role(roles: Collection[str], what: str) -> Callable[[User], User]:
    """A dependency: the signed-in user of a page only these roles may see (`what` names it in the 403)."""

    def role_checked(user: PageUser) -> User:
        if user.role not in roles:
            raise HTTPException(403, f"role {user.role} may not see {what}")
        return user

    return role_checked


def form_user(request: Request, user: PageUser, csrf_token: str = Form(default="")) -> User:
    """The signed-in user of a state-changing form, which must echo the session's CSRF token: else 403."""
    if not csrf_valid(request, csrf_token):
        raise HTTPException(403, "CSRF token missing or wrong")
    return user


FormUser = Annotated[User, Depends(form_user)]


def render(
    request: Request, template: str, user: User | None, status_code: int = 200, **context: object
) -> HTMLResponse:
    """A page in the language asked for (`?lang=`), else the session's, else zh-CN; the choice is kept."""
    lang = pick_language(request.query_params.get("lang"), request.session.get(SESSION_LANG))
    request.session[SESSION_LANG] = lang
    t = Translator(lang)
    points = review_services(request).points

    def point_label(point_id: str) -> str:
        point = points.get(point_id)
        return t("point.label", name=point.name, town=point.town) if point else point_id

    other = next(code for code in LANGUAGES if code != lang)
    switch = request.url.include_query_params(lang=other)
    page = request.app.state.templates.get_template(template).render(
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
    """A message shown once on the next page (post/redirect/get), in whatever language that page uses."""
    request.session[slot] = {"key": key, "values": values}
