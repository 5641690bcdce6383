"""The 双公示 page of the deployed app (issue 27 item 6): legal reviewers and supervisors see the decisions the export
would publish and the withdrawals it would list, and download `publicity.csv` and `publicity.json` byte for byte as
`feixian publicity export` writes them, with no forbidden field."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from test_case_procedure import FINISH, Clock, walk
from test_parties import VEHICLES, load
from test_parties_cli import cli, write_config
from test_publicity import assert_no_personal_data, decide, open_case
from test_review_ui_supervisor import sign_in

from cases.lifecycle import State
from cases.models import AccessLog
from cases.parties import PartyService
from cases.party_settings import PartySettings
from cases.service import CaseService
from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import Runtime
from pipeline.bus import MemoryBus

S = State
USERS = {"li": "reviewer", "wang": "legal", "zhou": "supervisor"}
PASSWORD = "a-long-pass"


def test_the_page_and_downloads_hold_what_the_command_writes(tmp_path, capsys) -> None:
    config = write_config(tmp_path)
    rt = Runtime(load_config(config, tmp_path / "data"))
    for name, role in USERS.items():
        rt.users.add_user(name, PASSWORD, role)
    clock = Clock()
    service = CaseService(rt.sessions, procedure=rt.cases.procedure, clock=clock)
    load(rt.sessions, PartyService(rt.sessions, PartySettings()), "vehicle", VEHICLES)
    fined = open_case(service, rt.store, "ev-fined", "vehicle", "沪D·62819", 0)
    decide(service, clock, fined, 200)
    walk(service, fined, FINISH)
    shop = open_case(service, rt.store, "ev-shop", "occupation", None, 1)
    decide(service, clock, shop, 100)
    warned = open_case(service, rt.store, "ev-warned", "vehicle", "沪E12345", 2)
    walk(service, warned, [(S.WARNED, "wang", None, None)])  # a first minor violation: never published
    pulled = open_case(service, rt.store, "ev-withdrawn", "occupation", None, 3)
    decide(service, clock, pulled, 500)
    walk(service, pulled, [*FINISH[:2], (S.WITHDRAWN, "wang", "decision revoked on review", None)])

    code, _, _ = cli(config, capsys, "publicity", "export", "--out", str(tmp_path / "out"))
    assert code == 0
    written = {ext: (tmp_path / "out" / f"publicity.{ext}").read_bytes() for ext in ("csv", "json")}
    doc = json.loads(written["json"])
    published = [r["decision_no"] for r in doc["published"]]
    assert len(published) == 2 and len(doc["withdrawn"]) == 1

    client = TestClient(build_app(rt, MemoryBus()))
    sign_in(client, "wang", PASSWORD)
    for ext, media in (("csv", "text/csv"), ("json", "application/json")):
        r = client.get(f"/publicity/export.{ext}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert r.headers["content-disposition"] == f'attachment; filename="publicity.{ext}"'
        assert r.content == written[ext], ext
    assert_no_personal_data(
        json.loads(client.get("/publicity/export.json").content), written["csv"].decode("utf-8-sig")
    )
    # Each evidence file the export read is logged as read by the person who asked for it.
    with rt.sessions() as s:
        read = s.scalars(select(AccessLog.key).where(AccessLog.username == "wang")).all()
    assert {f"evidence/JDZ-001/ev-{e}/original/best.jpg" for e in ("fined", "shop")} <= set(read)

    html = client.get("/publicity").text
    assert "双公示" in html and 'href="/publicity/export.csv"' in html and 'href="/publicity/export.json"' in html
    assert re.findall(r'<tr data-decision="([^"]+)"', html) == published
    assert re.findall(r'<tr data-withdrawn="([^"]+)"', html) == [w["decision_no"] for w in doc["withdrawn"]]
    assert "浦东渣土运输有限公司" in html and "沪D62819" not in html

    supervisor = TestClient(client.app)
    sign_in(supervisor, "zhou", PASSWORD)
    assert supervisor.get("/publicity/export.json").content == written["json"]
    reviewer = TestClient(client.app)
    sign_in(reviewer, "li", PASSWORD)
    assert reviewer.get("/publicity", follow_redirects=False).status_code == 403
