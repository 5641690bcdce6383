"""`feixian evidence verify` checks every case fact its manifest records: a case row changed in SQL behind
the service is named field by field (case, field, stored vs manifest), with a non-zero exit.

The cases are raised through the real evidence builder, as the pipeline raises them; issue #28 changed
`party`, `subtype`, `point_id` and `triggered_at` and verify still passed.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import postgres_database
from review_ui_seed import NOW, raise_case
from sqlalchemy import update

from cases.db import make_engine, session_factory, upgrade
from cases.manifest import iso_ms
from cases.models import Case
from cases.service import CaseService
from cases.store import LocalObjectStore
from feixian.cli import main
from feixian.config import load_config
from pipeline.evidence import EvidenceBuilder

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "default.yaml"
STARTED = NOW - timedelta(hours=1)
PLATE = "沪A12345"

# Each fact the manifest records, and a different value to write into the case row.
TAMPERED = {
    "event_id": "0" * 32,
    "point_id": "GYQ-001",
    "device_id": "CAM-OTHER",
    "category": "vehicle",
    "subtype": "goods",
    "zone_id": "road",
    "started_at": STARTED - timedelta(minutes=1),
    "triggered_at": STARTED + timedelta(seconds=10),
    "ended_at": STARTED + timedelta(minutes=5),
    "party": "沪B99999",
    "gps_lat": 30.5,
    "gps_lon": 120.5,
    "confidence": 0.5,
}


class World:
    """Two detected cases with real evidence in a data dir the CLI reads with configs/default.yaml."""

    def __init__(self, data: Path):
        self.data = data
        url = load_config(CONFIG, data).database_url
        data.mkdir(parents=True, exist_ok=True)
        upgrade(url)
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        builder = EvidenceBuilder(
            LocalObjectStore(data / "evidence"), {"name": "test-model", "version": "1", "sha256": "ab" * 32}, {}
        )
        cases = CaseService(self.sessions)
        self.case_id = raise_case(cases, builder, STARTED, plate=PLATE)
        self.other_id = raise_case(cases, builder, STARTED + timedelta(minutes=10))
        self.original = cases.get(self.case_id)

    def tamper(self, **values) -> None:
        with self.sessions() as s:
            s.execute(update(Case).where(Case.id == self.case_id).values(**values))
            s.commit()

    def verify(self, capsys) -> tuple[int, dict, str]:
        capsys.readouterr()
        rc = main(["evidence", "verify", "--all", "--config", str(CONFIG), "--data-dir", str(self.data)])
        out = capsys.readouterr()
        return rc, json.loads(out.out), out.err


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path, monkeypatch):
    with ExitStack() as stack:
        if request.param == "postgres":
            monkeypatch.setenv("DATABASE_URL", stack.enter_context(postgres_database()))
        w = World(tmp_path / "data")
        yield w
        w.engine.dispose()


def shown(value):
    """A value as verify reports it: times as the manifest writes them."""
    return iso_ms(value) if hasattr(value, "astimezone") else value


def mismatches(report: dict) -> dict[tuple[int, str], tuple]:
    return {(p["case_id"], p["field"]): (p["stored"], p["manifest"]) for p in report["problems"] if p["field"]}


def test_untouched_cases_verify(world, capsys):
    rc, report, err = world.verify(capsys)
    assert (rc, report["ok"], report["cases_checked"], report["problems"], err) == (0, True, 2, [], "")


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_each_fact_changed_in_sql_is_named(world, capsys, field):
    world.tamper(**{field: TAMPERED[field]})
    rc, report, err = world.verify(capsys)
    assert rc == 1 and not report["ok"]
    recorded = shown(getattr(world.original, field))
    assert mismatches(report) == {(world.case_id, field): (shown(TAMPERED[field]), recorded)}
    assert f"case {world.case_id}: case {field} " in err
    assert all(p["case_id"] == world.case_id for p in report["problems"])  # the other case is untouched


def test_the_issues_four_changes_are_all_named(world, capsys):
    changed = {f: TAMPERED[f] for f in ("party", "subtype", "point_id", "triggered_at")}
    world.tamper(**changed)
    rc, report, _ = world.verify(capsys)
    assert rc == 1
    assert mismatches(report) == {
        (world.case_id, f): (shown(v), shown(getattr(world.original, f))) for f, v in changed.items()
    }


def test_a_party_blanked_out_is_named(world, capsys):
    world.tamper(party=None)
    rc, report, _ = world.verify(capsys)
    assert rc == 1 and mismatches(report) == {(world.case_id, "party"): (None, PLATE)}


def test_evidence_dropped_from_the_case_is_named(world, capsys):
    evidence = dict(world.original.evidence)
    dropped = evidence.pop("annotated/after_dwell")
    world.tamper(evidence=evidence)
    rc, report, _ = world.verify(capsys)
    assert rc == 1
    assert [(p["key"], p["reason"]) for p in report["problems"]] == [
        (dropped, "manifest file 'annotated/after_dwell' is missing from the case's evidence")
    ]


def test_times_out_of_order_in_the_row_are_named_too(world, capsys):
    world.tamper(ended_at=STARTED)  # before its trigger, 3 s after the start
    rc, report, _ = world.verify(capsys)
    reasons = [p["reason"] for p in report["problems"]]
    assert rc == 1 and any(r.startswith("case times: ended_at") for r in reasons), reasons
