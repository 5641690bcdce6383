"""verify_case / verify_all against a local store and SQLite: tampering with bytes or rows is found."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from cases import NewCase
from cases.db import make_engine, session_factory, upgrade
from cases.manifest import FileEntry, iso_ms, sha256_hex
from cases.models import Case, CaseTransition
from cases.service import CaseNotFoundError, CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from cases.verify import verify_all, verify_case

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'feixian.db'}"
    upgrade(url)
    return session_factory(make_engine(url))


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "evidence")


@pytest.fixture
def service(sessions) -> CaseService:
    return CaseService(sessions)


def facts(event_id: str) -> dict:
    """The facts an evidence manifest records, matching the case `file_case` opens."""
    at = iso_ms(T0)
    return {
        "event_id": event_id,
        "point": {"id": "P1", "device_id": "cam", "gps": {"lat": 31.0, "lon": 121.0}},
        "category": "vehicle",
        "subtype": "dirty",
        "zone": {"id": "road"},
        "times": {"started_at": at, "triggered_at": at, "ended_at": None},
        "party": {"plate": "沪A12345"},
        "confidence": 0.9,
        "keyframes": [{"label": "best", "captured_at": at}],
    }


def file_case(service: CaseService, store: LocalObjectStore, event_id: str, plate: str = "沪A12345", **changed) -> Case:
    """Store a small bundle (two files and a manifest, its facts `changed` as given) and open its case, whose party
    is `plate`."""
    prefix = f"evidence/P1/2026/03/02/{event_id}"
    files = {
        "clip": (f"{prefix}/clip.mp4", b"fake mp4 " * 50),
        "original/best": (f"{prefix}/original/best.jpg", b"\xff\xd8jpeg"),
    }
    entries = {}
    for name, (key, data) in files.items():
        store.put(key, data, "application/octet-stream")
        entries[name] = FileEntry.of(key, data).to_json()
    raw = json.dumps(facts(event_id) | {"party": {"plate": plate}} | changed | {"files": entries}).encode()
    store.put(f"{prefix}/manifest.json", raw, "application/json")
    record = NewCase(
        event_id,
        "P1",
        "cam",
        "vehicle",
        "dirty",
        "road",
        T0,
        T0,
        None,
        plate,
        (31.0, 121.0),
        0.9,
        {name: key for name, (key, _) in files.items()} | {"manifest": f"{prefix}/manifest.json"},
        f"{prefix}/manifest.json",
        sha256_hex(raw),
    )
    return service.open_case(record)[0]


def overwrite_byte(store: LocalObjectStore, key: str, offset: int) -> None:
    path = store.root / key
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_cases_verify(service, store, sessions):
    UserService(sessions).add_user("li", "review-pass", "reviewer")
    a = file_case(service, store, "ev-a")
    file_case(service, store, "ev-b")
    service.transition(a.id, "voided", "li", reason="blurred")
    report = verify_all(sessions, store)
    assert report.ok, report.problems
    assert (report.cases_checked, report.files_checked) == (2, 4)
    assert verify_case(sessions, store, a.id).to_json() == {
        "ok": True,
        "cases_checked": 1,
        "files_checked": 2,
        "problems": [],
    }


def test_one_corrupted_byte_fails_that_file_only(service, store, sessions):
    case = file_case(service, store, "ev-a")
    file_case(service, store, "ev-b")
    overwrite_byte(store, case.evidence["clip"], 100)
    report = verify_all(sessions, store)
    assert not report.ok
    assert [(p.case_id, p.key, p.reason) for p in report.problems] == [
        (case.id, case.evidence["clip"], "SHA-256 differs from the manifest's")
    ]
    assert report.to_json()["ok"] is False


def test_edited_manifest_and_missing_file_are_reported(service, store, sessions):
    case = file_case(service, store, "ev-a")
    overwrite_byte(store, case.manifest_key, 2)
    (store.root / case.evidence["original/best"]).unlink()
    reasons = {(p.key, p.reason) for p in verify_case(sessions, store, case.id).problems}
    assert (case.manifest_key, "manifest SHA-256 differs from the one recorded with the case") in reasons
    assert (case.evidence["original/best"], "file missing from the store") in reasons


def test_edited_transition_row_breaks_the_chain(service, store, sessions):
    UserService(sessions).add_user("li", "review-pass", "reviewer")
    case = file_case(service, store, "ev-a")
    service.transition(case.id, "voided", "li", reason="plate unreadable")
    with sessions() as s:
        s.execute(update(CaseTransition).where(CaseTransition.seq == 1).values(reason="looked fine"))
        s.commit()
    problems = verify_case(sessions, store, case.id).problems
    assert [(p.key, p.reason) for p in problems] == [
        (None, "audit chain: transition seq 1: hash does not match its contents")
    ]


def test_state_changed_behind_the_service_breaks_the_chain(service, store, sessions):
    case = file_case(service, store, "ev-a")
    with sessions() as s:
        s.execute(update(Case).where(Case.id == case.id).values(state="confirmed"))
        s.commit()
    [problem] = verify_case(sessions, store, case.id).problems
    assert problem.reason == "audit chain: case state confirmed differs from the last transition's detected"


def test_case_pointing_at_other_evidence_is_reported(service, store, sessions):
    case = file_case(service, store, "ev-a")
    other = file_case(service, store, "ev-b")
    with sessions() as s:
        s.execute(update(Case).where(Case.id == case.id).values(evidence=other.evidence))
        s.commit()
    reasons = [p.reason for p in verify_case(sessions, store, case.id).problems]
    assert "case evidence 'clip' is not the manifest's" in reasons


def test_unknown_case_raises(sessions, store):
    with pytest.raises(CaseNotFoundError):
        verify_case(sessions, store, 99)
    assert verify_all(sessions, store).cases_checked == 0


def test_manifest_key_frames_at_one_time_are_reported(service, store, sessions):
    at = iso_ms(T0)
    frames = [{"label": "best_1", "captured_at": at}, {"label": "best_2", "captured_at": at}]
    case = file_case(service, store, "ev-a", keyframes=frames)
    [problem] = verify_case(sessions, store, case.id).problems
    assert (problem.key, problem.reason) == (
        case.manifest_key,
        "manifest times: key frame 2 is not after key frame 1 (both 2026-03-02T01:30:00+00:00)",
    )


def test_manifest_without_the_facts_is_reported(service, store, sessions):
    case = file_case(service, store, "ev-a", party="沪A12345", times=None)
    reasons = [p.reason for p in verify_case(sessions, store, case.id).problems]
    # An old-style party (a bare string) and no times: both named in one problem.
    assert len(reasons) == 1 and reasons[0].startswith("manifest facts unreadable: ")
    assert "times: " in reasons[0] and "party: " in reasons[0]
