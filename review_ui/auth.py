"""The signed-in session and the per-session CSRF token.

The session is Starlette's signed cookie. It carries only the username and the account's session
generation at sign-in (the account, its role, whether it is still active and whether its password has
been reset since are read afresh on every request), the chosen language and the CSRF token that every
POST form must echo back.

>>> safe_next("/cases/3"), safe_next("//evil.example/x")
('/cases/3', '/queue')
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

_USER = "username"
_GENERATION = "generation"
_CSRF = "csrf"
SESSION_LANG = "lang"  # the chosen language, kept across sign-in and sign-out


def session_username(request: Request) -> str | None:
    name = request.session.get(_USER)
    return name if isinstance(name, str) and name else None


def _restart(request: Request) -> None:
    # Only the language survives, so nothing chosen before sign-in (a planted CSRF token included)
    # carries over into the signed-in session.
    lang = request.session.get(SESSION_LANG)
    request.session.clear()
    if lang:
        request.session[SESSION_LANG] = lang


def session_generation(request: Request) -> int | None:
    generation = request.session.get(_GENERATION)
    return generation if isinstance(generation, int) else None


def sign_in(request: Request, username: str, generation: int) -> None:
    _restart(request)
    request.session[_USER] = username
    request.session[_GENERATION] = generation
    request.session[_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    _restart(request)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (the sign-in form needs one too)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = request.session[_CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_valid(request: Request, submitted: str | None) -> bool:
    expected = request.session.get(_CSRF)
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(expected, submitted)


def safe_next(target: str | None, default: str = "/queue") -> str:
    """A post-sign-in redirect target restricted to this site's own paths.

    >>> safe_next("https://evil.example"), safe_next("/\\\\evil.example")
    ('/queue', '/queue')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
