"""`feixian run` as `make run` starts it: the demo sources play in real time, cases of both families reach
the queue within three minutes, the clip is served, and a reviewer confirms one over HTTP.

Slow by nature (real time), so it belongs to `make test-slow`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port

from feixian.cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
FEIXIAN = [sys.executable, "-m", "feixian.cli"]


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.mark.slow
def test_run_brings_up_the_queue_with_both_families_within_three_minutes(tmp_path):
    if not (DEMO / ".complete").is_file():
        assert main(["synth", "--demo", "--out", str(DEMO)]) == 0
        (DEMO / ".complete").touch()
    data = tmp_path / "run"
    common = ["--config", str(REPO / "configs" / "demo.yaml"), "--data-dir", str(data)]
    subprocess.run(
        [*FEIXIAN, "users", "add", "demo", "--password-stdin", "--role", "reviewer", *common],
        input="feixian-demo\n",
        text=True,
        check=True,
        cwd=REPO,
    )
    port = free_port()
    proc = subprocess.Popen(
        [*FEIXIAN, "run", *common, "--port", str(port)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        categories: set[str] = set()
        while time.monotonic() - started < 180 and categories != {"occupation", "vehicle"}:
            time.sleep(5)
            assert proc.poll() is None, "feixian run exited"
            out = subprocess.run(
                [*FEIXIAN, "cases", "list", "--json", *common], cwd=REPO, capture_output=True, check=True, text=True
            ).stdout
            categories = {c["category"] for c in json.loads(out)}
        assert categories == {"occupation", "vehicle"}, f"after 180 s only {categories}"

        with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as client:
            login = client.get("/login")
            r = client.post(
                "/login", data={"username": "demo", "password": "feixian-demo", "csrf_token": csrf(login.text)}
            )
            assert r.status_code == 200 and "/queue" in str(r.url)
            case_id = int(re.search(r'href="/cases/(\d+)"', r.text).group(1))
            page = client.get(f"/cases/{case_id}")
            clip = client.get(f"/cases/{case_id}/evidence/clip", headers={"Range": "bytes=0-99"})
            assert clip.status_code == 206 and clip.headers["content-type"] == "video/mp4"
            r = client.post(
                f"/cases/{case_id}/decision",
                data={"decision": "confirmed", "reason": "", "csrf_token": csrf(page.text)},
            )
            assert r.status_code == 200
        out = subprocess.run(
            [*FEIXIAN, "cases", "list", "--json", "--state", "confirmed", *common],
            cwd=REPO,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        assert [c["id"] for c in json.loads(out)] == [case_id]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
