"""Retention (legal requirement 6): raw material no case holds is deleted once kept `raw_days`; case evidence stays.

What raw material the pipeline keeps: frames live only in memory (a point's queue on the bus and its worker's
ring buffer of pre-roll) and are never written out; pushed frames likewise. What reaches storage is evidence
(`pipeline.evidence`): a clip and key frames per event, under `evidence/<point>/<yyyy>/<mm>/<dd>/<event_id>/`. A
folder no case refers to is raw material: an event whose case was never opened (the process died between its
evidence and its case and the event was not replayed, or the case database refused it). Such objects are deleted
once stored longer than the window, judged by when the store received them, so a bundle a worker is filing right
now is never touched. Every object in the folder of a case's manifest is kept, whatever its age or state.

The job is idempotent (a second run finds nothing more to delete) and logs each deletion and a summary.

>>> import tempfile, os
>>> from cases.db import make_engine, session_factory, upgrade
>>> from cases.service import CaseService
>>> from cases.store import LocalObjectStore
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "feixian.db")
>>> upgrade(url)
>>> store = LocalObjectStore(tempfile.mkdtemp())
>>> store.put("evidence/P1/2026/01/01/e1/clip.mp4", b"x", "video/mp4")
>>> run_retention(CaseService(session_factory(make_engine(url))), store, raw_days=30).to_json()["kept_recent"]
1
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cases.service import CaseService
from cases.store import ObjectStore, StoreError

log = logging.getLogger(__name__)

EVIDENCE_PREFIX = "evidence/"


@dataclass
class RetentionReport:
    dry_run: bool
    cutoff: datetime
    objects_seen: int = 0
    kept_for_cases: int = 0
    kept_recent: int = 0
    deleted: list[str] = field(default_factory=list)  # with --dry-run: what would be deleted
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it could not be deleted

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"cutoff": self.cutoff.isoformat()}


def _held(key: str, folders: set[str]) -> bool:
    """Whether `key` lies in one of `folders` (at any depth)."""
    parts = key.split("/")
    return any("/".join(parts[:i]) in folders for i in range(1, len(parts)))


def run_retention(
    cases: CaseService, store: ObjectStore, raw_days: int, now: datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Delete (or with `dry_run` only list) evidence objects no case holds that were stored before `now - raw_days`."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=raw_days)
    report = RetentionReport(dry_run, cutoff)
    stored = store.list_stored(EVIDENCE_PREFIX)
    # Read after listing, so a case opened meanwhile still protects its files.
    keys = set(cases.evidence_keys())
    folders = {k.rsplit("/", 1)[0] for k in keys if k.endswith("/manifest.json")}
    for obj in stored:
        report.objects_seen += 1
        if obj.key in keys or _held(obj.key, folders):
            report.kept_for_cases += 1
        elif obj.stored_at > cutoff:
            report.kept_recent += 1
        elif dry_run:
            report.deleted.append(obj.key)
        else:
            _delete(store, obj.key, report)
    log.info(
        "retention%s: %d objects, %d held by cases, %d younger than %s, %d %s, %d failed",
        " (dry run)" if dry_run else "",
        report.objects_seen,
        report.kept_for_cases,
        report.kept_recent,
        cutoff.isoformat(),
        len(report.deleted),
        "to delete" if dry_run else "deleted",
        len(report.failed),
    )
    return report


def _delete(store: ObjectStore, key: str, report: RetentionReport) -> None:
    try:
        store.delete(key)
    except (StoreError, OSError) as e:  # e.g. still under S3 object lock; tried again at the next run
        report.failed[key] = f"{type(e).__name__}: {e}"
        log.warning("retention: %s not deleted: %s", key, e)
        return
    report.deleted.append(key)
    log.info("retention: deleted %s (no case refers to it)", key)
