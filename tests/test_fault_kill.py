"""Issue 28 item 5: `feixian replay` killed with SIGKILL mid-run and run again files each case exactly once, the
same cases as an undisturbed run, and `feixian evidence verify --all` passes (cases are idempotent on the event id,
an interrupted evidence bundle is completed from what was stored, write-once).

The kill lands at chosen moments inside the process (a small wrapper patches a call to SIGKILL itself there),
so each run proves the moment it names: after the first case, while the second event's evidence is half stored,
and with the second event's evidence stored but its case not yet opened. One more kill comes from outside, as soon
as the first case is in the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_scenario import sqlite_event_ids, write_scenario

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
POINTS = 4
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

# Runs `feixian replay` with one call patched to SIGKILL the process on its Nth use (argv: target, n, replay args).
KILLER = """
import os, signal, sys, threading
from feixian.cli import main
import cases.service, cases.store
owner, name = {"open_case": (cases.service.CaseService, "open_case"),
               "put": (cases.store.LocalObjectStore, "put")}[sys.argv[1]]
n, calls, lock, original = int(sys.argv[2]), [0], threading.Lock(), getattr(owner, name)
def deadly(*args, **kw):
    with lock:
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kw)
setattr(owner, name, deadly)
sys.exit(main(["replay", *sys.argv[3:]]))
"""


def feixian(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "feixian.cli", *argv], env=ENV, capture_output=True, text=True)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Path, list[str]]:
    """The scenario and the event ids of its undisturbed replay."""
    config = write_scenario(tmp_path_factory.mktemp("kill") / "scenario", points=POINTS)
    data = config.parent / "undisturbed"
    run = feixian("replay", "--config", str(config), "--data-dir", str(data))
    assert run.returncode == 0, run.stderr
    ids = sqlite_event_ids(data)
    assert len(ids) == len(set(ids)) == POINTS
    return config, ids


def kill_from_outside(args: list[str], data: Path) -> list[str]:
    """SIGKILL the replay as soon as its first case is in the database; returns the event ids then."""
    proc = subprocess.Popen([sys.executable, "-m", "feixian.cli", "replay", *args], env=ENV, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and not sqlite_event_ids(data):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        proc.stderr.close()
    return sqlite_event_ids(data)


@pytest.mark.parametrize(
    "where",
    [
        ("open_case", 2),  # the first case filed; the second event's evidence stored, its case not yet opened
        ("put", 9),  # the second bundle half stored: clip and key frames of one event, no manifest yet
        ("outside", None),  # kill -9 from outside once the first case is there
    ],
    ids=["before-second-case", "mid-bundle", "outside"],
)
def test_a_replay_killed_with_sigkill_and_run_again_files_each_case_once(tmp_path, scenario, where):
    config, undisturbed = scenario
    data = tmp_path / "run"
    args = ["--config", str(config), "--data-dir", str(data)]
    target, n = where
    if target == "outside":
        at_kill = kill_from_outside(args, data)
    else:
        killed = subprocess.run([sys.executable, "-c", KILLER, target, str(n), *args], env=ENV, capture_output=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
        at_kill = sqlite_event_ids(data)
    assert len(at_kill) < POINTS, "the kill came after the run had filed everything"

    rerun = feixian("replay", *args)
    assert rerun.returncode == 0, rerun.stderr
    assert sqlite_event_ids(data) == undisturbed  # one row per event id: none lost, none doubled
    verify = feixian("evidence", "verify", "--all", *args)
    assert verify.returncode == 0, verify.stdout + verify.stderr
