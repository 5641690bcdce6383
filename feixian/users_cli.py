"""`feixian users`: add, list, disable, enable and reset the accounts of the review UI.

A password never comes from the command line, where `ps` and the shell history would show it: it is
asked for twice on the terminal, or read from standard input with `--password-stdin` (scripts, `make run`):

    printf '%s\\n' "$PASSWORD" | feixian users add li --role reviewer --password-stdin
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TextIO

from cases.db import make_engine, session_factory, upgrade
from cases.lifecycle import Role
from cases.models import User
from cases.users import UserExistsError, UserNotFoundError, UserService
from feixian.config import load_config


class PasswordInputError(ValueError):
    """No usable password was given."""


class _PasswordOnCommandLine(argparse.Action):
    """`--password P` is refused with the way to do it instead, rather than as an unknown option."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(
            "--password was removed: a password on the command line shows in `ps` and the shell history; "
            "answer the prompt, or pipe it in with --password-stdin"
        )


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The new password: standard input's one line with `from_stdin`, else asked twice on the terminal."""
    stdin = stdin or sys.stdin
    if from_stdin:
        text = stdin.read()
        line = text[:-1] if text.endswith("\n") else text
        line = line[:-1] if line.endswith("\r") else line
        if "\n" in line:
            raise PasswordInputError("--password-stdin takes one line, got several")
        return line
    if not stdin.isatty():
        raise PasswordInputError("no terminal to ask for the password on: pipe it in with --password-stdin")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise PasswordInputError("the two passwords differ")
    return first


def user_json(user: User) -> dict:
    """What `users list --json` shows of an account (never its password hash)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
    }


def _users(args: argparse.Namespace) -> UserService:
    cfg = load_config(args.config, args.data_dir)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(cfg.database_url)
    return UserService(session_factory(make_engine(cfg.database_url)))


def cmd_add(args: argparse.Namespace) -> int:
    users = _users(args)
    if args.exist_ok and users.get_user(args.username) is not None:
        print(f"user {args.username} exists")
        return 0
    users.add_user(args.username, read_password(args.password_stdin), args.role, args.display_name)
    print(f"user {args.username} added with role {args.role}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    accounts = _users(args).list_users()
    if args.json:
        print(json.dumps([user_json(u) for u in accounts], ensure_ascii=False, indent=2))
        return 0
    for u in accounts:
        print(f"{u.username:<24} {u.role:<10} {'active' if u.active else 'disabled':<9} {u.display_name}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    _users(args).set_active(args.username, False)
    print(f"user {args.username} disabled: can no longer sign in; open sessions end")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    _users(args).set_active(args.username, True)
    print(f"user {args.username} enabled")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    users = _users(args)
    if users.get_user(args.username) is None:  # before asking for a password it could not use
        raise UserNotFoundError(f"no user {args.username!r}")
    users.reset_password(args.username, read_password(args.password_stdin))
    print(f"password of {args.username} reset: open sessions end")
    return 0


def _refusals(func):
    """Account errors end the command with their message and exit status 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (UserExistsError, UserNotFoundError, ValueError) as e:
            print(f"feixian users: {e}", file=sys.stderr)
            return 1

    return run


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    users = subparsers.add_parser("users", help="accounts").add_subparsers(dest="users_cmd", required=True)

    def command(name: str, func, help_: str, password: bool = False) -> argparse.ArgumentParser:
        p = users.add_parser(name, parents=[common], help=help_)
        p.add_argument("username")
        if password:
            p.add_argument("--password-stdin", action="store_true", help="read the password from stdin, not a prompt")
            p.add_argument("--password", action=_PasswordOnCommandLine, help=argparse.SUPPRESS)
        p.set_defaults(func=_refusals(func))
        return p

    p = command("add", cmd_add, "add an account (the password is asked for, or read with --password-stdin)", True)
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--display-name", default=None)
    p.add_argument("--exist-ok", action="store_true", help="succeed if the user already exists")
    command("disable", cmd_disable, "disable an account: no sign-in, open sessions end")
    command("enable", cmd_enable, "enable a disabled account again")
    command("reset-password", cmd_reset_password, "set a new password (asked for, or --password-stdin)", True)

    p = users.add_parser("list", parents=[common], help="list accounts (never their passwords)")
    p.add_argument("--json", action="store_true", help="JSON list of accounts")
    p.set_defaults(func=_refusals(cmd_list))
