"""`feixian cases move`, `cases list --json` and `sla report --json`: the lifecycle and its clock as commands, with
the service's checks (exit 2 and the reason, zh-CN first, when refused)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from test_cases_service import record

from cases.db import make_engine, session_factory
from cases.service import CaseService
from cases.users import UserService
from feixian.cli import main
from feixian.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def case_id(data) -> int:
    assert main(["db", "upgrade", "--config", str(CONFIG), "--data-dir", str(data)]) == 0
    sessions = session_factory(make_engine(load_config(CONFIG, data).database_url))
    for name, role in (("li", "reviewer"), ("wang", "legal")):
        UserService(sessions).add_user(name, "a-long-pass", role)
    return CaseService(sessions).open_case(replace(record(), party="沪A12345"))[0].id


def cli(data: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(CONFIG), "--data-dir", str(data)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_moves_are_checked_and_refusals_say_why(data, case_id, capsys):
    code, out, err = cli(data, capsys, "cases", "move", str(case_id), "--to", "filed", "--user", "li")
    assert (code, out) == (2, "")
    assert re.fullmatch(r"feixian cases move: 不能从 detected 转到 filed.* / cannot go from detected to filed.*\n", err)

    code, out, _ = cli(data, capsys, "cases", "move", str(case_id), "--to", "confirmed", "--user", "li")
    assert code == 0
    moved = json.loads(out)
    assert (moved["from"], moved["to"], moved["actor"]) == ("detected", "confirmed", "li")

    filed = ("--to", "filed", "--user", "wang", "--fine", "6000", "--party-kind", "person")
    code, out, _ = cli(data, capsys, "cases", "move", str(case_id), *filed)
    assert (code, json.loads(out)["details"]) == (0, {"fine_yuan": 6000, "party_kind": "person"})
    code, _, err = cli(data, capsys, "cases", "move", str(case_id), "--to", "notified", "--user", "wang")
    assert code == 2 and "法制审核" in err.split(" / ")[0] and "needs a legal review" in err

    code, _, err = cli(data, capsys, "cases", "move", str(case_id + 99), "--to", "filed", "--user", "wang")
    assert code == 2 and "没有案件" in err and "no case" in err


def test_list_and_report_show_the_clock(data, case_id, capsys):
    code, out, _ = cli(data, capsys, "cases", "list", "--json")
    (case,) = json.loads(out)
    assert code == 0 and case["party"] == "沪A12345"
    # The plate and subtype a reviewer corrected are the ones listed.
    cases = CaseService(session_factory(make_engine(load_config(CONFIG, data).database_url)))
    cases.correct(case_id, "plate", "沪A12346", "li")
    cases.correct(case_id, "subtype", "goods", "li")
    (case,) = json.loads(cli(data, capsys, "cases", "list", "--json")[1])
    assert (case["party"], case["subtype"]) == ("沪A12346", "goods")
    # Discovered Monday 2 March 2026, 09:30 in Shanghai; due at the end of the third working day after it.
    assert case["due_at"] == "2026-03-05T16:00:00+00:00" and case["overdue"] is True

    code, out, _ = cli(data, capsys, "sla", "report", "--json")
    report = json.loads(out)
    assert code == 0 and report["target_working_days"] == 3
    assert report["stages"]["detected"] == {"count": 0, "mean_hours": None, "p90_hours": None}
    assert [r["id"] for r in report["at_risk"]] == [case_id] and report["at_risk"][0]["overdue"] is True
