"""Issue 28 item 5: the S3 evidence store (moto's S3 server over HTTP) becomes unreachable during a replay. Evidence is
spooled under the data dir, the cases are filed marked "evidence pending" (`feixian cases list --json`), a
background upload with back-off sends the spool when the server answers again, and `feixian evidence verify --all`
passes: no case lost or doubled, no evidence file lost."""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import socket
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from conftest import free_port
from fastapi.testclient import TestClient
from fault_scenario import write_scenario
from minio import Minio
from moto.server import ThreadedMotoServer
from review_ui_seed import PASSWORD, open_world, seed
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from cases.models import Case
from cases.periodic import Periodic
from cases.spool import SpoolingStore
from feixian.cli import main
from feixian.config import load_config
from feixian.runtime import Runtime, replay
from review_ui.app import create_app

ACCESS, SECRET = "feixian-test", "feixian-test-secret"
POINTS = 4
BUNDLE_FILES = 6


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass  # the link was cut
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class Link:
    """The network between the store and moto's S3 server: a TCP forwarder on a port of its own that can be cut
    (its listening socket and every open connection closed: the store sees refused and reset connections, as when
    the server or its host is gone) and restored on the same port. The server behind it keeps its objects."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.bucket = f"feixian-fault-{secrets.token_hex(4)}"  # the server outlives one test; the bucket does not
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            if self._listener is None:
                return
            for sock in [self._listener, *self._open]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._listener, self._open = None, []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server.get_host_and_port()
    server.stop()


@pytest.fixture
def s3(monkeypatch, moto_server):
    monkeypatch.setenv("FEIXIAN_S3_ACCESS_KEY", ACCESS)
    monkeypatch.setenv("FEIXIAN_S3_SECRET_KEY", SECRET)
    link = Link(moto_server)
    yield link
    link.down()


def scenario(tmp_path: Path, s3: Link) -> Path:
    evidence = {"backend": "s3", "s3_endpoint": s3.endpoint, "s3_bucket": s3.bucket, "s3_secure": False}
    # Short waits, so the test does not sit out production back-off.
    spool = {"retry_initial_s": 0.05, "retry_max_s": 0.4}
    return write_scenario(tmp_path / "scenario", points=POINTS, evidence=evidence, spool=spool)


def cli_json(*argv: str) -> tuple[int, object]:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(list(argv))
    return rc, json.loads(out.getvalue())


def cut_after_one_bundle(runtime: Runtime, s3: Link) -> None:
    """The store goes away once it holds as many files as one event's bundle (clip, two originals, two annotated
    copies, manifest): the points' workers run in parallel, so which events those were varies, but at least
    POINTS - 1 events find it gone for some of their files."""
    remote = runtime.store.remote
    put, stored = remote.put, [0]
    lock = threading.Lock()

    def put_then_cut(key, data, content_type) -> None:
        put(key, data, content_type)
        with lock:
            stored[0] += 1
            if stored[0] == BUNDLE_FILES:
                s3.down()

    remote.put = put_then_cut


def wait_until_settled(runtime: Runtime) -> None:
    """Run the background upload (as `feixian run` does) until no case is pending, or fail."""
    done = threading.Event()
    settle = runtime.spool_uploader.settle

    def settle_and_check() -> None:
        settle()
        if runtime.cases.count_cases() == POINTS and not any(c.evidence_pending for c in runtime.cases.all_cases()):
            done.set()

    runtime.spool_uploader.settle = settle_and_check
    job = Periodic("spool-upload", runtime.spool_uploader.step)
    job.start()
    try:
        assert done.wait(120), "spooled evidence was never uploaded"
    finally:
        job.stop(timeout=30)


@pytest.mark.parametrize("fault", ["cut_mid_run", "down_from_the_start"])
def test_evidence_is_spooled_while_s3_is_down_and_uploaded_when_it_returns(tmp_path, moto_server, s3, fault):
    config = scenario(tmp_path, s3)
    data = tmp_path / "run"
    common = ["--config", str(config), "--data-dir", str(data)]
    runtime = Runtime(load_config(config, data))
    if fault == "cut_mid_run":
        s3.up()
        cut_after_one_bundle(runtime, s3)
    assert isinstance(runtime.store, SpoolingStore)

    result = replay(runtime)
    assert not result.errors
    assert sum(s.cases for s in result.stats.values()) == POINTS

    # Filed, each once, the ones whose evidence waits in the spool marked so.
    rc, cases = cli_json("cases", "list", "--json", *common)
    assert rc == 0
    assert len(cases) == len({c["event_id"] for c in cases}) == POINTS
    pending = [c for c in cases if c["evidence_pending"]]
    assert len(pending) >= (POINTS - 1 if fault == "cut_mid_run" else POINTS)
    spooled = runtime.store.spool.list()
    assert spooled and all(k.startswith("evidence/") for k in spooled)
    assert (data / "spool").is_dir()

    # While the server is down every pass fails and the wait doubles up to its cap.
    uploader = runtime.spool_uploader
    assert [uploader.step() for _ in range(5)] == [0.1, 0.2, 0.4, 0.4, 0.4]

    s3.up()
    wait_until_settled(runtime)
    assert runtime.store.spool.list() == []
    rc, cases = cli_json("cases", "list", "--json", *common)
    assert not any(c["evidence_pending"] for c in cases)
    assert len({c["event_id"] for c in cases}) == len(cases) == POINTS

    # Every evidence file of every case is in the bucket itself, and verify (a new process's view) passes.
    client = Minio("{}:{}".format(*moto_server), access_key=ACCESS, secret_key=SECRET, secure=False)
    in_bucket = {o.object_name for o in client.list_objects(s3.bucket, prefix="evidence/", recursive=True)}
    for c in cases:
        assert {c["manifest_key"], *c["evidence"].values()} <= in_bucket
    rc, report = cli_json("evidence", "verify", "--all", *common)
    assert rc == 0 and report["ok"] and report["cases_checked"] == POINTS, report["problems"]


def test_the_review_ui_shows_a_case_whose_evidence_is_pending(tmp_path):
    seed(tmp_path / "world", n_cases=2)
    world = open_world(tmp_path / "world")
    with Session(create_engine(world.db_url)) as s:
        s.execute(update(Case).where(Case.id == 1).values(evidence_pending=True))
        s.commit()
    client = TestClient(create_app(world.services), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
    r = client.post("/login", data={"username": "rev", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    queue = client.get("/queue").text
    assert queue.count("证据上传中") == 1  # case 1 only
    assert "证据上传中" in client.get("/cases/1").text
    assert "证据上传中" not in client.get("/cases/2").text
    assert "Evidence pending" in client.get("/cases/1?lang=en").text
