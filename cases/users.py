"""Accounts of the people who review and process cases.

>>> import tempfile, os
>>> from cases.db import make_engine, session_factory, upgrade
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> users = UserService(session_factory(make_engine(url)))
>>> users.add_user("li", "s3cret-pass", "reviewer", "李审核").role
'reviewer'
>>> users.authenticate("li", "s3cret-pass").display_name, users.authenticate("li", "nope")
('李审核', None)
>>> users.set_active("li", False).active, users.authenticate("li", "s3cret-pass")
(False, None)
>>> users.set_role("li", "legal").role
'legal'
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cases.lifecycle import PIPELINE_ACTOR, Role
from cases.models import User, utcnow
from cases.passwords import dummy_hash, hash_password, verify_password

MIN_PASSWORD_LENGTH = 8
_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class UserExistsError(ValueError):
    """The username is taken."""


class UserNotFoundError(LookupError):
    """No account with that username."""


class UserService:
    """Adds accounts and checks passwords (PBKDF2-SHA256, see `cases.passwords`)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def add_user(self, username: str, password: str, role: Role | str, display_name: str | None = None) -> User:
        if not _USERNAME_RE.fullmatch(username):
            raise ValueError(
                f"用户名 {username!r} 须为 1-64 个 A-Z a-z 0-9 _ . - 字符，以字母或数字开头 / "
                f"username {username!r}: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
            )
        if username == PIPELINE_ACTOR:
            raise ValueError(
                f"用户名 {PIPELINE_ACTOR!r} 留作自动识别的审计记录 / "
                f"username {PIPELINE_ACTOR!r} is reserved for the pipeline's own audit entries"
            )
        role = _role(role)
        _check_password(password)
        user = User(
            username=username,
            display_name=display_name or username,
            role=role.value,
            password_hash=hash_password(password),
            active=True,
            created_at=utcnow(),
        )
        with self._sessions() as s:
            s.add(user)
            try:
                s.commit()
            except IntegrityError:
                raise UserExistsError(f"用户 {username!r} 已存在 / user {username!r} already exists") from None
        return user

    def get_user(self, username: str) -> User | None:
        with self._sessions() as s:
            return s.scalar(select(User).where(User.username == username))

    def list_users(self) -> list[User]:
        """Every account, disabled ones included, by username."""
        with self._sessions() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def set_active(self, username: str, active: bool) -> User:
        """Enable or disable an account; a disabled one can neither sign in nor act (its open sessions
        end on their next request, as the review UI reads the account afresh each time)."""
        with self._sessions() as s:
            user = _find(s, username)
            user.active = active
            s.commit()
            return user

    def set_role(self, username: str, role: Role | str) -> User:
        """Give the account another role; it applies from the account's next request (the review UI reads the role
        afresh each time)."""
        role = _role(role)
        with self._sessions() as s:
            user = _find(s, username)
            user.role = role.value
            s.commit()
            return user

    def reset_password(self, username: str, password: str) -> User:
        """Give the account a new password; the old one stops working and the account's open sessions
        end (`User.session_generation`), in case the old one leaked."""
        _check_password(password)
        password_hash = hash_password(password)
        with self._sessions() as s:
            user = _find(s, username)
            user.password_hash = password_hash
            user.session_generation += 1
            s.commit()
            return user

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with this password, else None; as slow for unknown users as for known."""
        user = self.get_user(username)
        if user is None:
            verify_password(password, dummy_hash())
            return None
        if not verify_password(password, user.password_hash) or not user.active:
            return None
        return user


def _find(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFoundError(f"没有用户 {username!r} / no user {username!r}")
    return user


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValueError(f"未知角色 {role!r}（可选：{roles}） / unknown role {role!r}; one of {roles}") from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"密码至少 {MIN_PASSWORD_LENGTH} 个字符 / password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
