"""Issue 26 item 4, acceptance: one `feixian serve` (push API -> Redis Streams) and two `feixian worker` processes
over Redis (127.0.0.1:6379, keys under a prefix of this test's own, deleted after) and PostgreSQL (127.0.0.1:5432,
a database of this test's own, dropped after), evidence in S3 (moto's server over HTTP). The fault scenario's
four points are pushed as a camera gateway would, frame by frame in capture order; as soon as the first case
is in the database, the worker holding the most points is killed with SIGKILL. Its points move to the other
worker, which resumes them from their checkpoints and unacknowledged frames, and the run ends with exactly the
cases of an undisturbed run (the embedded replay of the same frames: same event ids, so the same points,
categories, zones and start times, none doubled), each of them passing `feixian evidence verify`."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import yaml
from conftest import free_port, postgres_database
from fault_scenario import sqlite_event_ids, write_scenario
from moto.server import ThreadedMotoServer
from push_world import gateway

from feixian.config import load_config
from feixian.runtime import Runtime, replay
from pipeline.frames import Frame
from pipeline.redis_bus import RedisBus, StreamKeys

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
POINTS = 4
TOKEN = "gateway-secret"
ACCESS, SECRET = "feixian-test", "feixian-test-secret"
MOVE_LIMIT_S = 10.0


@pytest.fixture
def redis_prefix():
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as e:
        pytest.skip(f"Redis at 127.0.0.1:6379 unreachable: {e}")
    prefix = f"feixian-test-{secrets.token_hex(4)}"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


def scale_out_settings(scenario: Path, prefix: str, s3_endpoint: str) -> Path:
    """The scenario's points as push points of one gateway, over Redis, with evidence in S3."""
    listed = yaml.safe_load((scenario.parent / "points.yaml").read_text(encoding="utf-8"))["points"]
    for p in listed:
        p["source"] = {"kind": "push"}
    (scenario.parent / "push-points.yaml").write_text(yaml.safe_dump({"points": listed}), encoding="utf-8")
    settings = yaml.safe_load(scenario.read_text(encoding="utf-8")) | {
        "points_file": "push-points.yaml",
        "gateways": [gateway("gw", [p["id"] for p in listed], TOKEN).model_dump()],
        "bus": {"backend": "redis", "redis": {"key_prefix": prefix}},  # the shipped lease and checkpoint period
        "evidence": {
            "backend": "s3",
            "s3_endpoint": s3_endpoint,
            "s3_bucket": f"feixian-{secrets.token_hex(4)}",
            "s3_secure": False,
            "min_free_mb": 0,
        },
    }
    path = scenario.parent / "scale-out.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return path


def case_rows(database_url: str) -> list[tuple[str, str, str, str, str]]:
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("select event_id, point_id, category, subtype, zone_id from cases").fetchall()
    return sorted(rows)


def holders(client: redis.Redis, prefix: str, point_ids: list[str]) -> dict[str, str | None]:
    keys = StreamKeys(prefix)
    return {pid: (v.decode() if (v := client.get(keys.lease(pid))) else None) for pid in point_ids}


def wait_for(what: str, check, timeout: float, procs: list[subprocess.Popen]) -> float:
    """Poll `check` until true; returns the seconds it took. Fails early when a process died."""
    started = time.monotonic()
    while not check():
        for p in procs:
            assert p.poll() is None, f"{p.args[3]} exited with {p.returncode} while waiting for {what}"
        assert time.monotonic() - started < timeout, f"no {what} after {timeout:.0f} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_worker_killed_mid_scenario_loses_no_case_and_doubles_none(tmp_path, redis_prefix, s3_endpoint, capsys):
    client, prefix = redis_prefix
    scenario = write_scenario(tmp_path / "scenario", points=POINTS, video_s=30.0)
    undisturbed = Runtime(load_config(scenario, tmp_path / "undisturbed"))
    frames: list[Frame] = []
    for point in undisturbed.config.points:
        undisturbed.source_for(point, realtime=False).run(frames.append)
    frames.sort(key=lambda f: (f.captured_at, f.point_id))
    replay(undisturbed)
    expected = sorted((c.event_id, c.point_id, c.category, c.subtype, c.zone_id) for c in undisturbed.cases.all_cases())
    assert len(expected) == POINTS and [row[0] for row in expected] == sqlite_event_ids(tmp_path / "undisturbed")

    config = scale_out_settings(scenario, prefix, s3_endpoint)
    point_ids = [p.id for p in undisturbed.config.points]
    with postgres_database() as database_url:
        env = os.environ | {
            "DATABASE_URL": database_url,
            "FEIXIAN_S3_ACCESS_KEY": ACCESS,
            "FEIXIAN_S3_SECRET_KEY": SECRET,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO),
        }
        data = tmp_path / "scale-out"

        log = (tmp_path / "processes.log").open("w")

        def feixian(*argv: str) -> subprocess.Popen:
            cmd = [sys.executable, "-m", "feixian.cli", argv[0], "--config", str(config), "--data-dir", str(data)]
            return subprocess.Popen([*cmd, *argv[1:]], env=env, stderr=log)

        # Migrated before the processes start: two of them migrating at once would race.
        upgrade = [
            sys.executable,
            "-m",
            "feixian.cli",
            "db",
            "upgrade",
            "--config",
            str(config),
            "--data-dir",
            str(data),
        ]
        assert subprocess.run(upgrade, env=env, capture_output=True).returncode == 0
        port = free_port()
        procs = [feixian("serve", "--port", str(port)), feixian("worker"), feixian("worker")]
        workers = procs[1:]
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for("serve", lambda: _answers(base), 120, procs)
            # Both workers hold points before the first frame: the kill then takes points from a working share.
            wait_for(
                "two workers sharing the points",
                lambda: None not in (h := holders(client, prefix, point_ids)).values() and len(set(h.values())) == 2,
                120,
                procs,
            )
            killed, moved_s, at_kill = None, None, []
            publisher = RedisBus(client, StreamKeys(prefix), max_pending=1, max_len=64)
            with httpx.Client(base_url=base, timeout=30) as http:
                for i, f in enumerate(frames):
                    _push(http, f)
                    if i % POINTS == POINTS - 1:
                        # A camera's pace, not a flood: the next instant goes once the workers have kept up (or are
                        # down), so the kill lands while the scenario is under way.
                        _wait_below(publisher, point_ids, queued=POINTS * 2, timeout=30)
                    if killed is None and i % POINTS == 0 and (at_kill := case_rows(database_url)):
                        # The first case is in: kill the worker holding the most points, mid-scenario.
                        held = list(holders(client, prefix, point_ids).values())
                        name = max(set(held), key=held.count)
                        killed = next(w for w in workers if name.split("-")[-2] == str(w.pid))
                        killed.send_signal(signal.SIGKILL)
                        killed.wait(30)
                        kill_at = time.monotonic()
                        survivor = next(w for w in workers if w is not killed)
                        moved = holders(client, prefix, point_ids)
                        taken_from = [pid for pid, h in moved.items() if h == name]
                    if killed is not None and moved_s is None:
                        if all(h not in (None, name) for h in holders(client, prefix, point_ids).values()):
                            moved_s = time.monotonic() - kill_at
            assert killed is not None, "the scenario ended before the first case: nothing was killed mid-run"
            assert len(at_kill) < POINTS and taken_from, "the kill came after the killed worker had filed its cases"
            for pid in point_ids:  # the scenario is over: its points are drained, filed and closed
                publisher.close_point(pid)
            if moved_s is None:
                wait_for(
                    "the killed worker's points at the survivor",
                    lambda: all(h not in (None, name) for h in holders(client, prefix, point_ids).values()),
                    MOVE_LIMIT_S,
                    [procs[0], survivor],
                )
                moved_s = time.monotonic() - kill_at
            wait_for("every point finished", lambda: all(map(publisher.is_finished, point_ids)), 120, [survivor])
            rows = case_rows(database_url)
            with capsys.disabled():
                print(
                    f"\nscale-out: SIGKILL after {len(at_kill)} of {POINTS} cases; its points {taken_from} moved in "
                    f"{moved_s:.1f} s; cases: {len(rows)} over Redis, {len(expected)} undisturbed"
                )
            assert moved_s <= MOVE_LIMIT_S
            assert rows == expected  # none lost, none doubled: the same event ids, points, categories, zones
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            codes = [p.wait(60) for p in procs]
            log.close()
        assert codes[0] == 0 and codes[1:].count(-signal.SIGKILL) == 1 and codes[1:].count(0) == 1, (
            codes,
            (tmp_path / "processes.log").read_text()[-3000:],
        )
        verify = subprocess.run(
            [sys.executable, "-m", "feixian.cli", "evidence", "verify", "--all", "--config", str(config)]
            + ["--data-dir", str(data)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _wait_below(bus: RedisBus, point_ids: list[str], queued: int, timeout: float) -> None:
    """Until no point has `queued` frames waiting to be read, or `timeout` s have passed (points without an owner
    queue up until their new owner takes them)."""
    deadline = time.monotonic() + timeout
    while any(bus.pending(pid) >= queued for pid in point_ids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _push(http: httpx.Client, f: Frame) -> None:
    """POST one frame as the gateway; a full point (503) is sent again after the wait it asks for."""
    while True:
        r = http.post(
            f"/api/v1/points/{f.point_id}/frames",
            content=f.jpeg,
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": "image/jpeg",
                "X-Capture-Time": f.captured_at.isoformat(),
                "X-Frame-Seq": str(f.seq),
            },
        )
        if r.status_code != 503:
            assert r.status_code == 202, r.text
            return
        time.sleep(float(r.headers.get("Retry-After", "1")))
