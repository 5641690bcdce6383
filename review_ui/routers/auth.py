"""Sign-in and sign-out.

The sign-in form answers a wrong CSRF token or password on its own page (400, 401) rather than with an
error page, so the reader can try again; sign-out without a valid token signs nobody out.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from review_ui.auth import csrf_valid, safe_next, sign_in, sign_out
from review_ui.dependencies import render, review_services, signed_in

router = APIRouter()


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/queue") -> Response:
    if signed_in(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", None, next=safe_next(next), problem=None)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: str = Form(max_length=64),
    password: str = Form(max_length=256),
    csrf_token: str = Form(default=""),
    next: str = Form(default="/queue"),
) -> Response:
    if not csrf_valid(request, csrf_token):
        return render(request, "login.html", None, status_code=400, next=safe_next(next), problem="error.csrf")
    user = review_services(request).users.authenticate(username, password)
    if user is None:
        return render(request, "login.html", None, status_code=401, next=safe_next(next), problem="login.failed")
    sign_in(request, user.username, user.session_generation)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False)
def logout(request: Request, csrf_token: str = Form(default="")) -> RedirectResponse:
    if csrf_valid(request, csrf_token):
        sign_out(request)
    return RedirectResponse("/login", status_code=303)
