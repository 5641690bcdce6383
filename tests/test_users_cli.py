"""`feixian users`: passwords from a prompt or stdin (never the command line), list, disable, enable,
reset; and what the review UI makes of a disabled or reset account."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cases.db import make_engine, session_factory, upgrade
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from feixian.cli import main
from feixian.config import load_config
from review_ui.app import ReviewServices, create_app

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "default.yaml"
PASSWORD = "review-pass-1"


class Terminal(io.StringIO):
    """Standard input that is a terminal (the prompt is answered through getpass, patched)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "data"


def users_cli(data: Path, monkeypatch, *args: str, stdin: io.StringIO | None = None) -> int:
    monkeypatch.setattr("sys.stdin", stdin or io.StringIO(""))
    return main(["users", *args, "--config", str(CONFIG), "--data-dir", str(data)])


def add(data: Path, monkeypatch, name: str = "li", password: str = PASSWORD) -> None:
    cli = ("add", name, "--role", "reviewer", "--password-stdin")
    assert users_cli(data, monkeypatch, *cli, stdin=io.StringIO(password + "\n")) == 0


def sessions(data: Path):
    url = load_config(CONFIG, data).database_url
    data.mkdir(parents=True, exist_ok=True)
    upgrade(url)  # a refused command may have made no database
    return session_factory(make_engine(url))


def service(data: Path) -> UserService:
    return UserService(sessions(data))


def test_password_comes_from_stdin(data, monkeypatch):
    add(data, monkeypatch)
    assert service(data).authenticate("li", PASSWORD).role == "reviewer"


def test_password_on_the_command_line_is_refused(data, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        users_cli(data, monkeypatch, "add", "li", "--role", "reviewer", "--password", PASSWORD)
    assert stop.value.code == 2
    assert "--password-stdin" in capsys.readouterr().err
    assert service(data).get_user("li") is None


def test_password_prompt_asks_twice(data, monkeypatch, capsys):
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "review-pass-2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert users_cli(data, monkeypatch, "add", "li", "--role", "reviewer", stdin=Terminal()) == 0
    assert users_cli(data, monkeypatch, "add", "wang", "--role", "reviewer", stdin=Terminal()) == 1
    assert "differ" in capsys.readouterr().err
    assert service(data).authenticate("li", PASSWORD) is not None
    assert service(data).get_user("wang") is None


@pytest.mark.parametrize(
    "stdin, why",
    [
        (io.StringIO(""), "no terminal"),  # no --password-stdin and nothing to prompt on
        (io.StringIO("short\n"), "at least 8"),
        (io.StringIO("review-pass-1\nreview-pass-2\n"), "one line"),
    ],
)
def test_unusable_passwords_are_refused(data, monkeypatch, capsys, stdin, why):
    flags = ["--password-stdin"] if stdin.getvalue() else []
    assert users_cli(data, monkeypatch, "add", "li", "--role", "reviewer", *flags, stdin=stdin) == 1
    assert why in capsys.readouterr().err
    assert service(data).get_user("li") is None


def test_list_disable_enable(data, monkeypatch, capsys):
    add(data, monkeypatch, "li")
    add(data, monkeypatch, "wang")
    assert users_cli(data, monkeypatch, "disable", "wang") == 0
    capsys.readouterr()
    assert users_cli(data, monkeypatch, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["username"], u["role"], u["active"]) for u in listed] == [
        ("li", "reviewer", True),
        ("wang", "reviewer", False),
    ]
    assert not any("password" in key for u in listed for key in u)
    assert service(data).authenticate("wang", PASSWORD) is None
    assert users_cli(data, monkeypatch, "enable", "wang") == 0
    assert service(data).authenticate("wang", PASSWORD) is not None
    assert users_cli(data, monkeypatch, "list") == 0
    assert re.search(r"^wang\s+reviewer\s+active", capsys.readouterr().out, re.M)


def test_unknown_accounts_are_an_error(data, monkeypatch, capsys):
    add(data, monkeypatch)
    for args in (("disable", "nobody"), ("enable", "nobody"), ("reset-password", "nobody", "--password-stdin")):
        assert users_cli(data, monkeypatch, *args, stdin=io.StringIO("review-pass-2\n")) == 1
        assert "no user 'nobody'" in capsys.readouterr().err


def review_ui(data: Path) -> TestClient:
    services = ReviewServices(
        cases=CaseService(sessions(data)),
        users=service(data),
        store=LocalObjectStore(data / "evidence"),
        secret_key="s" * 32,
    )
    return TestClient(create_app(services), follow_redirects=False)


def sign_in(client: TestClient, password: str = PASSWORD) -> int:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
    return client.post("/login", data={"username": "li", "password": password, "csrf_token": token}).status_code


def test_a_disabled_account_cannot_sign_in_and_its_session_ends(data, monkeypatch):
    add(data, monkeypatch)
    client = review_ui(data)
    assert sign_in(client) == 303 and client.get("/queue").status_code == 200
    assert users_cli(data, monkeypatch, "disable", "li") == 0
    assert client.get("/queue").status_code == 303  # back to sign-in
    assert sign_in(review_ui(data)) == 401
    assert users_cli(data, monkeypatch, "enable", "li") == 0
    assert sign_in(review_ui(data)) == 303


def test_a_reset_password_ends_open_sessions(data, monkeypatch):
    add(data, monkeypatch)
    client = review_ui(data)
    assert sign_in(client) == 303
    new = io.StringIO("review-pass-2\n")
    assert users_cli(data, monkeypatch, "reset-password", "li", "--password-stdin", stdin=new) == 0
    assert client.get("/queue").status_code == 303
    assert sign_in(review_ui(data)) == 401
    fresh = review_ui(data)
    assert sign_in(fresh, "review-pass-2") == 303 and fresh.get("/queue").status_code == 200
