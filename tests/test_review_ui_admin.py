"""The accounts page (issue 27 item 1): an administrator lists, adds, re-roles, disables and enables accounts under
the rules of `feixian users`, each form with its CSRF token; refusals come back on the page in zh-CN first, English
second; an administrator cannot disable or demote themself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from review_ui_seed import PASSWORD, World, make_world
from test_review_ui_supervisor import sign_in

from review_ui.app import create_app


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, n_cases=0)  # accounts rev (reviewer) and ops (ops)
    world.users.add_user("root", PASSWORD, "admin", "钱管理")
    return world


@pytest.fixture
def app(world: World):
    return create_app(world.services)


@pytest.fixture
def admin(app) -> TestClient:
    client = TestClient(app)
    sign_in(client, "root", PASSWORD)
    return client


def token(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/users").text)[1]


def post(client: TestClient, url: str, form: dict[str, str]):
    return client.post(url, data=form | {"csrf_token": token(client)}, follow_redirects=False)


def page(client: TestClient, lang: str = "zh-CN") -> str:
    return client.get(f"/admin/users?lang={lang}").text


def test_the_page_lists_every_account_in_chinese_first(admin: TestClient) -> None:
    html = page(admin)
    assert "账号管理" in html and "停用" in html
    assert re.findall(r'<tr data-user="([^"]+)"', html) == ["ops", "rev", "root"]
    # Every form carries the session's token.
    forms = re.findall(r'<form method="post".*?</form>', html, re.S)
    assert len(forms) == 1 + 2 * 2 + 1  # sign-out, role and active of the two others, the new account
    assert all('name="csrf_token"' in f for f in forms)


def test_an_account_added_signs_in_with_its_role(admin: TestClient, app, world: World) -> None:
    form = {"username": "zhang", "display_name": "张法制", "role": "legal", "password": "legal-pass-1"}
    r = post(admin, "/admin/users", form)
    assert (r.status_code, r.headers["location"]) == (303, "/admin/users")
    user = world.users.get_user("zhang")
    assert (user.role, user.display_name, user.active) == ("legal", "张法制", True)
    assert "已新增账号 zhang" in page(admin)
    newcomer = TestClient(app)
    sign_in(newcomer, "zhang", "legal-pass-1")
    assert newcomer.get("/publicity").status_code == 200


@pytest.mark.parametrize(
    "form, zh, en",
    [
        ({"username": "li", "role": "reviewer", "password": "short"}, "密码至少 8 个字符", "at least 8 characters"),
        ({"username": "rev", "role": "reviewer", "password": "long-enough"}, "已存在", "already exists"),
        ({"username": "li wang", "role": "reviewer", "password": "long-enough"}, "用户名", "username"),
        ({"username": "pipeline", "role": "reviewer", "password": "long-enough"}, "自动识别", "reserved"),
        ({"username": "li", "role": "boss", "password": "long-enough"}, "未知角色", "unknown role"),
    ],
)
def test_a_refused_account_is_explained_chinese_first(admin: TestClient, world: World, form, zh, en) -> None:
    before = [(u.username, u.role) for u in world.users.list_users()]
    r = post(admin, "/admin/users", form)
    assert (r.status_code, r.headers["location"]) == (303, "/admin/users")
    error = re.search(r'<p class="error" role="alert">([^<]*)</p>', page(admin))[1]
    assert error.startswith("未保存：") and zh in error.split(" / ")[0] and en in error.split(" / ")[1], error
    assert [(u.username, u.role) for u in world.users.list_users()] == before
    # The message is shown once.
    assert 'class="error"' not in page(admin)


def test_a_role_changed_applies_on_the_next_request(admin: TestClient, app, world: World) -> None:
    reviewer = TestClient(app)
    sign_in(reviewer, "rev", PASSWORD)
    assert reviewer.get("/publicity", follow_redirects=False).status_code == 403
    r = post(admin, "/admin/users/rev/role", {"role": "legal"})
    assert r.status_code == 303 and world.users.get_user("rev").role == "legal"
    assert reviewer.get("/publicity", follow_redirects=False).status_code == 200
    r = post(admin, "/admin/users/rev/role", {"role": "boss"})
    assert r.status_code == 303 and world.users.get_user("rev").role == "legal"
    assert "未知角色" in page(admin)


def test_disabling_ends_the_accounts_sessions_and_enabling_lets_it_back(admin: TestClient, app, world) -> None:
    ops = TestClient(app)
    sign_in(ops, "ops", PASSWORD)
    assert ops.get("/queue", follow_redirects=False).status_code == 200
    assert post(admin, "/admin/users/ops/active", {"active": "false"}).status_code == 303
    assert world.users.get_user("ops").active is False
    assert "已停用账号 ops" in page(admin)
    assert ops.get("/queue", follow_redirects=False).headers["location"].startswith("/login")
    assert post(admin, "/admin/users/ops/active", {"active": "true"}).status_code == 303
    assert world.users.get_user("ops").active is True
    sign_in(ops, "ops", PASSWORD)
    assert ops.get("/queue", follow_redirects=False).status_code == 200


def test_the_admin_cannot_disable_or_demote_themself(admin: TestClient, world: World) -> None:
    assert post(admin, "/admin/users/root/active", {"active": "false"}).status_code == 303
    assert "不能停用自己的账号" in page(admin)
    assert post(admin, "/admin/users/root/role", {"role": "reviewer"}).status_code == 303
    assert "You cannot change your own role." in page(admin, "en")
    root = world.users.get_user("root")
    assert (root.active, root.role) == (True, "admin")
    assert admin.get("/admin/users").status_code == 200


def test_forms_without_the_token_change_nothing(admin: TestClient, world: World) -> None:
    forms = [
        ("/admin/users", {"username": "mallory", "role": "admin", "password": "long-enough"}),
        ("/admin/users/rev/role", {"role": "admin"}),
        ("/admin/users/rev/active", {"active": "false"}),
    ]
    for url, form in forms:
        for sent in (form, form | {"csrf_token": "forged"}):
            r = admin.post(url, data=sent, headers={"Accept": "text/html"}, follow_redirects=False)
            assert r.status_code == 403, (url, r.status_code)
    rev = world.users.get_user("rev")
    assert (rev.role, rev.active, world.users.get_user("mallory")) == ("reviewer", True, None)


def test_an_unknown_account_is_not_found(admin: TestClient) -> None:
    assert post(admin, "/admin/users/nobody/active", {"active": "false"}).status_code == 404
    assert post(admin, "/admin/users/nobody/role", {"role": "legal"}).status_code == 404
