"""UserService: accounts, roles and password checks (SQLite)."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from cases.db import make_engine, session_factory, upgrade
from cases.models import User
from cases.passwords import hash_password
from cases.users import UserExistsError, UserNotFoundError, UserService


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'feixian.db'}"
    upgrade(url)
    return session_factory(make_engine(url))


@pytest.fixture
def users(sessions) -> UserService:
    return UserService(sessions)


def test_added_user_authenticates_with_the_right_password_only(users):
    user = users.add_user("wang", "legal-review-1", "legal", "王法制")
    assert (user.username, user.role, user.display_name, user.active) == ("wang", "legal", "王法制", True)
    assert "legal-review-1" not in user.password_hash
    assert users.authenticate("wang", "legal-review-1").username == "wang"
    assert users.authenticate("wang", "legal-review-2") is None
    assert users.authenticate("nobody", "legal-review-1") is None
    assert users.get_user("wang").role == "legal"
    assert users.get_user("nobody") is None


def test_display_name_defaults_to_the_username(users):
    assert users.add_user("ops1", "ops-password", "ops").display_name == "ops1"


def test_inactive_users_cannot_sign_in(users, sessions):
    users.add_user("zhao", "supervise-pw", "supervisor")
    with sessions() as s:
        s.execute(update(User).where(User.username == "zhao").values(active=False))
        s.commit()
    assert users.authenticate("zhao", "supervise-pw") is None


def test_usernames_are_unique(users):
    users.add_user("li", "review-pass", "reviewer")
    with pytest.raises(UserExistsError, match="'li' already exists"):
        users.add_user("li", "other-pass", "admin")
    assert users.authenticate("li", "review-pass").role == "reviewer"


@pytest.mark.parametrize(
    "username, password, role, why",
    [
        ("li", "review-pass", "boss", "unknown role 'boss'"),
        ("li", "short", "reviewer", "at least 8"),
        ("pipeline", "review-pass", "reviewer", "reserved"),
        ("", "review-pass", "reviewer", "username"),
        ("li wang", "review-pass", "reviewer", "username"),
    ],
)
def test_bad_accounts_are_refused(users, username, password, role, why):
    with pytest.raises(ValueError, match=why):
        users.add_user(username, password, role)
    assert users.get_user(username) is None


def test_accounts_are_listed_disabled_and_enabled(users):
    users.add_user("zhao", "supervise-pw", "supervisor")
    users.add_user("li", "review-pass", "reviewer")
    assert users.set_active("zhao", False).active is False
    assert [(u.username, u.active) for u in users.list_users()] == [("li", True), ("zhao", False)]
    assert users.authenticate("zhao", "supervise-pw") is None
    users.set_active("zhao", True)
    assert users.authenticate("zhao", "supervise-pw").username == "zhao"


def test_a_reset_password_replaces_the_old_one_and_ends_sessions(users):
    before = users.add_user("li", "review-pass", "reviewer").session_generation
    with pytest.raises(ValueError, match="at least 8"):
        users.reset_password("li", "short")
    after = users.reset_password("li", "new-review-pass").session_generation
    assert after == before + 1
    assert users.authenticate("li", "review-pass") is None
    assert users.authenticate("li", "new-review-pass").username == "li"


def test_unknown_accounts_cannot_be_changed(users):
    with pytest.raises(UserNotFoundError, match="'nobody'"):
        users.set_active("nobody", False)
    with pytest.raises(UserNotFoundError, match="'nobody'"):
        users.reset_password("nobody", "new-review-pass")


def test_accounts_made_before_migration_0002_keep_working(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    with make_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, display_name, role, password_hash, active, created_at) "
                "VALUES ('li', 'li', 'reviewer', :h, 1, '2026-01-01 00:00:00.000000')"
            ),
            {"h": hash_password("review-pass")},
        )
    upgrade(url)
    users = UserService(session_factory(make_engine(url)))
    assert users.authenticate("li", "review-pass").session_generation == 0
