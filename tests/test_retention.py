"""Issue 28 item 7: raw material no case holds is deleted after `retention.raw_days`; case evidence is kept; the job
is idempotent and logged; `feixian retention run [--dry-run] [--json]`; `feixian run` / `serve` run it themselves.

The pipeline writes no raw frames or recordings (frames live in memory only, see `cases.retention`), so the raw
material on storage is evidence no case refers to: an event whose case was never opened."""

from __future__ import annotations

import io
import json
import logging
import os
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from pydantic import ValidationError

from cases.records import NewCase
from cases.retention import run_retention
from cases.store import LocalObjectStore, S3ObjectStore
from feixian.cli import main
from feixian.config import RetentionSettings, load_config
from feixian.runtime import LivePipeline, Runtime
from pipeline.bus import MemoryBus

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "default.yaml"
T = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
OLD = 40  # days, beyond the 30-day window


def event_folder(event_id: str) -> str:
    return f"evidence/JDZ-001/2026/01/01/{event_id}"


def bundle_keys(event_id: str) -> list[str]:
    folder = event_folder(event_id)
    return [f"{folder}/clip.mp4", f"{folder}/original/first_seen.jpg", f"{folder}/manifest.json"]


def put_bundle(store, event_id: str) -> list[str]:
    keys = bundle_keys(event_id)
    for key in keys:
        store.put(key, event_id.encode(), "application/octet-stream")
    return keys


def age(store: LocalObjectStore, keys: list[str], days: int) -> None:
    then = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    for key in keys:
        os.utime(store.path(key), (then, then))


def open_case(runtime: Runtime, event_id: str, keys: list[str]) -> None:
    record = NewCase(
        event_id, "JDZ-001", "cam", "occupation", "stall", "front", T, T, None, None, (31.0, 121.0), 0.8,
        {"clip": keys[0], "original/first_seen": keys[1], "manifest": keys[2]}, keys[2], "ab" * 32,
    )  # fmt: skip
    runtime.cases.open_case(record)


@pytest.fixture
def world(tmp_path) -> tuple[Runtime, LocalObjectStore, dict[str, list[str]]]:
    """A case 40 days old, a raw bundle 40 days old (no case), a raw bundle from today, and a half-built raw one."""
    runtime = Runtime(load_config(CONFIG, tmp_path / "run"))
    store = runtime.store
    assert isinstance(store, LocalObjectStore)
    bundles = {name: put_bundle(store, name) for name in ("case-old", "raw-old", "raw-new")}
    bundles["raw-half"] = [f"{event_folder('raw-half')}/clip.mp4"]
    store.put(bundles["raw-half"][0], b"x", "video/mp4")
    open_case(runtime, "case-old", bundles["case-old"])
    for name in ("case-old", "raw-old", "raw-half"):
        age(store, bundles[name], OLD)
    return runtime, store, bundles


def test_raw_material_past_the_window_goes_and_case_evidence_stays(world, caplog):
    runtime, store, bundles = world
    with caplog.at_level(logging.INFO, logger="cases.retention"):
        report = run_retention(runtime.cases, store, raw_days=30)
    gone = bundles["raw-old"] + bundles["raw-half"]
    assert sorted(report.deleted) == sorted(gone)
    assert (report.objects_seen, report.kept_for_cases, report.kept_recent, report.failed) == (10, 3, 3, {})
    assert not any(store.exists(k) for k in gone)
    assert all(store.exists(k) for k in bundles["case-old"] + bundles["raw-new"])
    assert not (store.root / event_folder("raw-old")).exists()  # no empty folders left behind
    logged = caplog.text
    assert all(f"retention: deleted {k}" in logged for k in gone)
    assert "4 deleted" in logged

    again = run_retention(runtime.cases, store, raw_days=30)  # idempotent
    assert (again.deleted, again.kept_for_cases, again.kept_recent) == ([], 3, 3)


def test_the_window_follows_the_setting(world):
    runtime, store, bundles = world
    assert run_retention(runtime.cases, store, raw_days=60).deleted == []
    assert run_retention(runtime.cases, store, raw_days=30).deleted != []


def test_cli_dry_run_lists_and_keeps_then_a_run_deletes(world):
    runtime, store, bundles = world
    common = ["--config", str(CONFIG), "--data-dir", str(runtime.config.data_dir)]
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["retention", "run", "--dry-run", "--json", *common]) == 0
    report = json.loads(out.getvalue())
    assert report["dry_run"] and len(report["deleted"]) == 4
    assert all(store.exists(k) for k in report["deleted"])
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["retention", "run", *common]) == 0
    assert "deleted 4" in out.getvalue()
    assert not any(store.exists(k) for k in report["deleted"])


def test_live_runs_apply_retention_themselves(world):
    runtime, store, bundles = world
    live = LivePipeline(runtime, MemoryBus(4), [], with_sources=False, jobs=runtime.background_jobs())
    live.start()
    assert live.stop(timeout=60) == []  # the first retention pass runs at start, and stop waits for it
    assert not store.exists(bundles["raw-old"][0])
    assert store.exists(bundles["case-old"][0])


def test_s3_orphans_are_deleted_and_locked_ones_reported(tmp_path):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = "{}:{}".format(*server.get_host_and_port())
        runtime = Runtime(load_config(CONFIG, tmp_path / "run"))
        later = datetime.now(UTC) + timedelta(days=OLD)  # S3 stamps objects itself; judge them 40 days on
        for bucket, lock_days, expect_failed in (("ret-plain", 0, 0), ("ret-locked", 365, 3)):
            store = S3ObjectStore(endpoint, "k", "s", bucket, secure=False, object_lock_days=lock_days)
            raw = put_bundle(store, "raw-old")
            open_case(runtime, f"case-{bucket}", put_bundle(store, f"case-{bucket}"))
            report = run_retention(runtime.cases, store, raw_days=30, now=later)
            assert len(report.failed) == expect_failed, report.failed
            assert sorted(report.deleted) == ([] if lock_days else sorted(raw))
            assert all(store.exists(k) for k in bundle_keys(f"case-{bucket}"))
    finally:
        server.stop()


def test_the_window_cannot_be_set_below_the_legal_minimum():
    assert RetentionSettings().raw_days == 30
    with pytest.raises(ValidationError, match="greater than or equal to 30"):
        RetentionSettings(raw_days=7)
