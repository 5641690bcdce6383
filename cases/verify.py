"""Re-check stored evidence and audit trails (`feixian evidence verify`).

For each case: the manifest must be in the store with the SHA-256 the case recorded, every file it
lists must re-hash to its recorded size and SHA-256, the case's evidence keys must be the manifest's,
every fact the manifest records (event, point, device, GPS, zone, category, subtype, times, party,
confidence) must be the case row's, the times must be consistent (`cases.timeline`), and the
transition hash chain must be intact and end in the case's state. A fact that differs is reported with
the field, the value stored with the case and the manifest's.

>>> report = verify_all(sessions, store)  # doctest: +SKIP
>>> report.ok, [p.reason for p in report.problems]  # doctest: +SKIP
(True, [])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cases.audit import Link, StoredLink, chain_problems
from cases.manifest import FileEntry, ManifestError, ManifestFacts, iso_ms, parse_manifest, read_files, sha256_hex
from cases.models import Case, CaseTransition
from cases.service import CaseNotFoundError
from cases.store import ObjectNotFoundError, ObjectStore
from cases.timeline import time_problems

BATCH = 200

_Report = Callable[..., None]  # (key, reason, **mismatch): records one problem of the case


@dataclass(frozen=True)
class Problem:
    """One failed check: the case, the object key involved (if any) and what is wrong; for a case fact
    that differs from its manifest, the field with the value stored with the case and the manifest's."""

    case_id: int
    key: str | None
    reason: str
    field: str | None = None
    stored: Any = None
    manifest: Any = None


@dataclass
class VerifyReport:
    cases_checked: int = 0
    files_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cases_checked": self.cases_checked,
            "files_checked": self.files_checked,
            "problems": [asdict(p) for p in self.problems],
        }


def verify_case(sessions: sessionmaker[Session], store: ObjectStore, case_id: int) -> VerifyReport:
    """Check one case; raises `CaseNotFoundError` if there is no such case."""
    with sessions() as s:
        case = s.get(Case, case_id)
        if case is None:
            raise CaseNotFoundError(f"no case {case_id}")
        report = VerifyReport()
        _check(store, case, _transitions(s, [case_id])[case_id], report)
        return report


def verify_all(sessions: sessionmaker[Session], store: ObjectStore) -> VerifyReport:
    report = VerifyReport()
    with sessions() as s:
        for batch in _batches(s):
            chains = _transitions(s, [c.id for c in batch])
            for case in batch:
                _check(store, case, chains[case.id], report)
    return report


def _check(store: ObjectStore, case: Case, links: list[StoredLink], report: VerifyReport) -> None:
    report.cases_checked += 1
    problem = _reporter(case, report)
    for reason in chain_problems(case.event_id, case.manifest_sha256, case.state, links):
        problem(None, f"audit chain: {reason}")
    for reason in time_problems(case.started_at, case.triggered_at, case.ended_at):
        problem(None, f"case times: {reason}")
    try:
        raw = store.get(case.manifest_key)
    except ObjectNotFoundError:
        problem(case.manifest_key, "manifest missing from the store")
        return
    if sha256_hex(raw) != case.manifest_sha256:
        problem(case.manifest_key, "manifest SHA-256 differs from the one recorded with the case")
    try:
        manifest = parse_manifest(raw)
        files = read_files(manifest)
    except ManifestError as e:
        problem(case.manifest_key, str(e))
        return
    _check_facts(case, manifest, problem)
    _check_evidence_keys(case, files, problem)
    for entry in files.values():
        _check_file(store, entry, report, problem)


def _reporter(case: Case, report: VerifyReport) -> _Report:
    def problem(key: str | None, reason: str, **mismatch: Any) -> None:
        report.problems.append(Problem(case.id, key, reason, **mismatch))

    return problem


def _check_facts(case: Case, manifest: dict[str, Any], problem: _Report) -> None:
    try:
        facts = ManifestFacts.of(manifest)
    except ManifestError as e:
        problem(case.manifest_key, str(e))
        return
    for name, recorded in facts.case_fields().items():
        stored = _stored(case, name)
        if stored != recorded:
            reason = f"case {name} {stored!r} differs from the manifest's {recorded!r}"
            problem(case.manifest_key, reason, field=name, stored=stored, manifest=recorded)
    t = facts.times
    keyframe_times = [k.captured_at for k in facts.keyframes]
    for reason in time_problems(t.started_at, t.triggered_at, t.ended_at, keyframe_times):
        problem(case.manifest_key, f"manifest times: {reason}")


def _stored(case: Case, name: str) -> Any:
    """A case column as `ManifestFacts.case_fields` names and formats it."""
    value = getattr(case, name)
    return iso_ms(value) if isinstance(value, datetime) else value


def _check_evidence_keys(case: Case, files: dict[str, FileEntry], problem: _Report) -> None:
    for name, key in case.evidence.items():
        if key != case.manifest_key and (name not in files or files[name].key != key):
            problem(key, f"case evidence {name!r} is not the manifest's")
    # A file dropped from the case row would hide it from the review page while the manifest lists it.
    for name in sorted(files.keys() - case.evidence.keys()):
        problem(files[name].key, f"manifest file {name!r} is missing from the case's evidence")


def _check_file(store: ObjectStore, entry: FileEntry, report: VerifyReport, problem: _Report) -> None:
    report.files_checked += 1
    try:
        data = store.get(entry.key)
    except ObjectNotFoundError:
        problem(entry.key, "file missing from the store")
        return
    if len(data) != entry.size:
        problem(entry.key, f"size {len(data)} differs from the manifest's {entry.size}")
    if sha256_hex(data) != entry.sha256:
        problem(entry.key, "SHA-256 differs from the manifest's")


def _batches(s: Session) -> Iterator[list[Case]]:
    # Keyset pages keep memory flat however many cases there are.
    last = 0
    while True:
        batch = list(s.scalars(select(Case).where(Case.id > last).order_by(Case.id).limit(BATCH)))
        if not batch:
            return
        yield batch
        last = batch[-1].id
        s.expunge_all()


def _transitions(s: Session, case_ids: list[int]) -> dict[int, list[StoredLink]]:
    chains: dict[int, list[StoredLink]] = {cid: [] for cid in case_ids}
    query = (
        select(CaseTransition)
        .where(CaseTransition.case_id.in_(case_ids))
        .order_by(CaseTransition.case_id, CaseTransition.seq)
    )
    for t in s.scalars(query):
        link = Link(t.seq, t.from_state, t.to_state, t.actor, t.at, t.reason, t.details)
        chains[t.case_id].append(StoredLink(link, t.prev_hash, t.hash))
    return chains
