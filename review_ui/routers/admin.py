"""The accounts page (issue 27 item 1, `/admin/users`, administrators only): every account with its role and whether
it may sign in; adding one, changing its role, disabling and enabling it, under the rules `feixian users` applies
(`cases.users.UserService`). An administrator may neither disable nor demote themself, so the bureau cannot lock
itself out of its own accounts by a slip of the mouse.

Every form carries the session's CSRF token; a refusal comes back on the page (post/redirect/get), in zh-CN first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from cases.lifecycle import Role
from cases.models import User
from cases.users import MIN_PASSWORD_LENGTH, UserNotFoundError
from review_ui.dependencies import FormUser, message, render, require_role, review_services

ADMIN_ROLES = frozenset({Role.ADMIN.value})
AdminUser = Annotated[User, Depends(require_role(ADMIN_ROLES, "the accounts"))]
PAGE = "/admin/users"
ERROR = "admin_error"  # the session slot of the page's refusal

router = APIRouter()


def admin_form(user: FormUser) -> User:
    """The signed-in administrator of a state-changing form (its CSRF token checked): else 403."""
    if user.role not in ADMIN_ROLES:
        raise HTTPException(403, f"role {user.role} may not manage accounts")
    return user


AdminForm = Annotated[User, Depends(admin_form)]


@router.get(PAGE, include_in_schema=False)
def users_page(request: Request, user: AdminUser) -> HTMLResponse:
    return render(
        request,
        "admin_users.html",
        user,
        accounts=review_services(request).users.list_users(),
        roles=[r.value for r in Role],
        min_password=MIN_PASSWORD_LENGTH,
        error=request.session.pop(ERROR, None),
    )


@router.post(PAGE, include_in_schema=False)
def add_user(
    request: Request,
    user: AdminForm,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    role: Annotated[str, Form(max_length=32)],
    display_name: Annotated[str, Form(max_length=128)] = "",
) -> RedirectResponse:
    try:
        review_services(request).users.add_user(username.strip(), password, role, display_name.strip() or None)
    except ValueError as e:  # a bad name, role or password, or a name taken (UserExistsError)
        return _refused(request, "admin.error.refused", detail=str(e))
    message(request, "flash", "admin.flash.added", name=username.strip(), role=role)
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/{username}/role", include_in_schema=False)
def change_role(
    request: Request, user: AdminForm, username: str, role: Annotated[str, Form(max_length=32)]
) -> RedirectResponse:
    if username == user.username:
        return _refused(request, "admin.error.own_role")
    try:
        review_services(request).users.set_role(username, role)
    except UserNotFoundError:
        raise HTTPException(404, f"no user {username}") from None
    except ValueError as e:
        return _refused(request, "admin.error.refused", detail=str(e))
    message(request, "flash", "admin.flash.role", name=username, role=role)
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/{username}/active", include_in_schema=False)
def set_active(request: Request, user: AdminForm, username: str, active: Annotated[bool, Form()]) -> RedirectResponse:
    if username == user.username and not active:
        return _refused(request, "admin.error.own_account")
    try:
        review_services(request).users.set_active(username, active)
    except UserNotFoundError:
        raise HTTPException(404, f"no user {username}") from None
    message(request, "flash", "admin.flash.enabled" if active else "admin.flash.disabled", name=username)
    return RedirectResponse(PAGE, status_code=303)


def _refused(request: Request, key: str, **values: object) -> RedirectResponse:
    message(request, ERROR, key, **values)
    return RedirectResponse(PAGE, status_code=303)
