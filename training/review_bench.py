"""`feixian bench-review`: how fast the review UI answers with a bureau's load of cases in PostgreSQL (`make bench`;
issue 27's last acceptance: the queue and case pages in p95 < 150 ms, the next case on screen < 300 ms after a
decision in Chromium).

In one run:
- a fresh database `feixian_bench_<pid>` on the PostgreSQL server (dropped afterwards, whatever happens), migrated,
  filled with `--cases` cases (100,000 by default) over the settings' points, zones and categories, spread over 60
  days: the newest `--detected-share` await review, the rest confirmed or voided, each with its hash-chained
  transitions; then `ANALYZE`, as autovacuum would have done on a live database;
- one real evidence set (an H.264 clip and key frames of a rendered street, hashed manifest) written once to the
  bench's evidence folder; every case points to it, so `feixian evidence verify` would name the shared manifest's
  event id (a bench database, never evidence);
- the deployed app (`feixian serve` with the settings file) in its own process, once past the retention pass it
  runs at start, signed in to as a reviewer:
  `queue_*_ms` and `case_*_ms`, p50 and p95 of `--requests` GETs of /queue and of /cases/ID (random cases of any
  state), after a few unmeasured ones;
- Debian's Chromium (Playwright, headless): `next_case_*_ms`, from pressing the confirm key on a case to the next
  case's page being on screen (its heading and key frames loaded), over `--decisions` decisions.

`targets_ms` holds the acceptance's bars and `targets_met` whether each p95 is within its bar. The figures depend on
the machine and what else runs on it: `machine` records the CPUs, the load average at the start and the PostgreSQL
and Chromium versions beside them.

>>> percentiles([5.0, 1.0, 3.0, 2.0, 4.0])
{'p50': 3.0, 'p95': 4.8}
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from cases.audit import GENESIS, Link, link_hash
from cases.db import make_engine, session_factory, upgrade
from cases.lifecycle import PIPELINE_ACTOR, State
from cases.models import Case, CaseTransition
from cases.records import NewCase
from cases.store import ObjectStore, make_store
from cases.users import UserService
from feixian.config import ConfigError, load_config
from feixian.domain import ZONE_KINDS_FOR, Category, Point
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.evidence import EvidenceBuilder
from pipeline.frames import Frame, encode_jpeg
from pipeline.taxonomy import CLASSES
from review_ui.void_reasons import VOID_REASONS
from training.bench import machine_facts
from training.evaluate import write_json
from training.synth.frames import render_frame, scenario_backdrop, training_scene

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
REVIEWER, PASSWORD = "bench-rev", "bench-review-pass-1"
SUBTYPES = {Category.OCCUPATION: ("stall", "shopfront", "goods"), Category.VEHICLE: ("dirty", "uncovered")}
SPAN = timedelta(days=60)
BATCH = 5_000
FPS = 5.0
# Issue 27's acceptance: the queue and case pages, and the next case on screen after a decision.
TARGETS_MS = {"queue_p95_ms": 150.0, "case_p95_ms": 150.0, "next_case_p95_ms": 300.0}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (linear interpolation), rounded to 0.1."""
    arr = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(arr, 50)), 1), "p95": round(float(np.percentile(arr, 95)), 1)}


@contextlib.contextmanager
def bench_database(admin: str = PG_ADMIN) -> Iterator[str]:
    """A fresh database `feixian_bench_<pid>` on the PostgreSQL server; yields its SQLAlchemy URL, drops it after."""
    name = f"feixian_bench_{os.getpid()}"
    params = dict(re.findall(r"(\w+)=(\S+)", admin))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{params.get('user', 'postgres')}@{params['host']}:{params['port']}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_evidence(store: ObjectStore, point: Point, at: datetime) -> NewCase:
    """One real evidence set at `point`: 20 frames of a rendered street (a clip and two key frames, hashed
    manifest), stored once; the record a case of it would be opened with."""
    plan = training_scene(seed=4001, scene=0, size=(640, 360))
    backdrop = scenario_backdrop(plan)
    frames, seen = [], None
    for i in range(20):
        img, labels = render_frame(plan, backdrop, 100 + i)
        frames.append(Frame(point.id, i, at + timedelta(seconds=i / FPS), encode_jpeg(img)))
        if seen is None and labels:
            label = labels[0][1]
            seen = ObjectSeen(label.box, CLASSES[label.class_id], 0.87, track_id=1)
    objects = [seen] if seen else []
    event = ViolationEvent(
        point_id=point.id,
        category=Category.OCCUPATION,
        subtype="stall",
        zone_id=point.zones[0].id,
        started_at=at,
        triggered_at=at + timedelta(seconds=3),
        ended_at=None,
        objects=objects,
        keyframes=[KeyFrame("first_seen", frames[0], objects), KeyFrame("after_dwell", frames[15], objects)],
        details={"dwell_s": 3.0},
    )
    builder = EvidenceBuilder(store, {"name": "bench", "version": "1", "sha256": "ab" * 32}, {"conf": 0.35})
    return builder.build(event, point, frames, FPS).to_new_case(event, point)


@dataclass(frozen=True)
class Seeded:
    """What `seed_cases` wrote: every case id, and those awaiting review, oldest first."""

    case_ids: list[int]
    detected_ids: list[int]


def seed_cases(
    engine: Engine,
    n: int,
    evidence: NewCase,
    points: Sequence[Point],
    now: datetime,
    detected_share: float = 0.1,
    seed: int = 27,
) -> Seeded:
    """`n` cases over `points` (their zones and categories), triggered over the `SPAN` before `now`, pointing to
    `evidence`: the newest `detected_share` of them in `detected`, the others confirmed or voided by a reviewer an
    hour or two later; each with its transitions in a valid hash chain. Bulk inserts, `BATCH` rows at a time."""
    rng = random.Random(seed)
    places = [(p, z, c) for p in points for c in p.categories for z in p.zones if z.kind in ZONE_KINDS_FOR[c]]
    times = sorted(now - SPAN * rng.random() for _ in range(n))
    n_detected = round(n * detected_share)
    case_ids: list[int] = []
    with engine.begin() as conn:
        for start in range(0, n, BATCH):
            rows, finals = [], []
            for i in range(start, min(n, start + BATCH)):
                point, zone, category = rng.choice(places)
                triggered = times[i]
                vehicle = category == Category.VEHICLE
                final = State.DETECTED if i >= n - n_detected else rng.choice((State.CONFIRMED, State.VOIDED))
                finals.append((final, triggered + timedelta(minutes=rng.randint(30, 180))))
                rows.append(
                    {
                        "event_id": f"bench-{seed}-{i:07d}",
                        "point_id": point.id,
                        "device_id": point.device_id,
                        "category": category.value,
                        "subtype": rng.choice(SUBTYPES[category]),
                        "zone_id": zone.id,
                        "state": final.value,
                        "started_at": triggered - timedelta(seconds=point.dwell_seconds),
                        "triggered_at": triggered,
                        "ended_at": None,
                        "detected_at": triggered + timedelta(seconds=2),
                        "party": f"沪D{rng.randint(10000, 99999)}" if vehicle else None,
                        "gps_lat": point.gps[0],
                        "gps_lon": point.gps[1],
                        "confidence": round(rng.uniform(0.4, 0.95), 3),
                        "evidence": dict(evidence.evidence),
                        "manifest_key": evidence.manifest_key,
                        "manifest_sha256": evidence.manifest_sha256,
                        "evidence_pending": False,
                        "created_at": triggered + timedelta(seconds=2),
                        "updated_at": triggered + timedelta(seconds=2),
                    }
                )
            ids = conn.execute(insert(Case).returning(Case.id, sort_by_parameter_order=True), rows).scalars().all()
            links = []
            for case_id, row, (final, decided_at) in zip(ids, rows, finals, strict=True):
                links += _chain(case_id, row, final, decided_at)
            conn.execute(insert(CaseTransition), links)
            case_ids += ids
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    return Seeded(case_ids, case_ids[n - n_detected :])


def _chain(case_id: int, row: dict, final: State, decided_at: datetime) -> list[dict]:
    steps = [Link(0, None, State.DETECTED.value, PIPELINE_ACTOR, row["detected_at"], None)]
    if final != State.DETECTED:
        reason = VOID_REASONS[0][0] if final == State.VOIDED else None
        steps.append(Link(1, State.DETECTED.value, final.value, REVIEWER, decided_at, reason))
    out, prev = [], GENESIS
    for link in steps:
        digest = link_hash(prev, row["event_id"], row["manifest_sha256"], link)
        out.append(
            {
                "case_id": case_id,
                "seq": link.seq,
                "from_state": link.from_state,
                "to_state": link.to_state,
                "actor": link.actor,
                "at": link.at,
                "reason": link.reason,
                "details": None,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    return out


@contextlib.contextmanager
def serving(config: Path, data_dir: Path, database_url: str) -> Iterator[str]:
    """`feixian serve` with `config` over the bench database in its own process; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"DATABASE_URL": database_url}
    command = [sys.executable, "-m", "feixian.cli", "serve", "--config", str(config), "--data-dir", str(data_dir)]
    log = open(data_dir / "serve.log", "w")  # noqa: SIM115 (closed below, after the process)
    proc = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        # Up, and past the retention pass it runs at start (every case's evidence keys: seconds at 100,000 cases),
        # so the figures are of the app at work, not starting.
        while not _ready(base) or "cases.retention" not in (data_dir / "serve.log").read_text():
            if proc.poll() is not None:
                raise RuntimeError(f"feixian serve exited {proc.returncode}: {(data_dir / 'serve.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("feixian serve was not up and past its retention pass within 300 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def signed_in(base: str) -> httpx.Client:
    """An HTTP client signed in as the bench's reviewer."""
    client = httpx.Client(base_url=base, timeout=30)
    token = _csrf(client.get("/login").text)
    r = client.post("/login", data={"username": REVIEWER, "password": PASSWORD, "csrf_token": token})
    if r.status_code != 303:
        raise RuntimeError(f"sign-in refused: {r.status_code}")
    return client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found[1]


def time_pages(client: httpx.Client, urls: Sequence[str], warm_up: int = 5) -> list[float]:
    """Milliseconds of each GET of `urls` (each must answer 200), after `warm_up` unmeasured ones."""
    for url in urls[:warm_up]:
        client.get(url)
    out = []
    for url in urls:
        started = time.perf_counter()
        r = client.get(url)
        out.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url} answered {r.status_code}")
    return out


# On screen: the page's heading names the case, and every key frame has loaded and been decoded.
_ON_SCREEN = """(id) => {
  const h1 = document.querySelector("h1");
  const imgs = [...document.querySelectorAll("main img")];
  const loaded = imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  return h1 !== null && h1.textContent.includes(String(id)) && loaded;
}"""


def time_decisions(base: str, detected_ids: Sequence[int], decisions: int) -> list[float]:
    """Milliseconds from pressing the confirm key (c) to the next case on screen, `decisions` times in Chromium,
    starting at the oldest case awaiting review (the first decision unmeasured: the browser's caches are cold)."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            page.set_default_timeout(30_000)
            page.goto(f"{base}/login")
            page.fill("#username", REVIEWER)
            page.fill("#password", PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/queue")
            page.goto(f"{base}/cases/{detected_ids[0]}")
            page.wait_for_function(_ON_SCREEN, arg=detected_ids[0], polling="raf")
            for i in range(decisions + 1):
                started = time.perf_counter()
                page.keyboard.press("c")
                page.wait_for_url(f"{base}/cases/{detected_ids[i + 1]}")
                page.wait_for_function(_ON_SCREEN, arg=detected_ids[i + 1], polling="raf")
                if i:
                    out.append((time.perf_counter() - started) * 1000)
        finally:
            browser.close()
    return out


def _postgres_version(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.scalar(text("SHOW server_version")))
    finally:
        engine.dispose()


def _chromium_version() -> str | None:
    try:
        return subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return None


def bench(
    config: str | Path,
    cases: int = 100_000,
    requests: int = 200,
    decisions: int = 20,
    detected_share: float = 0.1,
    progress: bool = True,
) -> dict:
    """Every figure of the module docstring."""
    machine = machine_facts()
    cfg = load_config(config, Path(tempfile.mkdtemp(prefix="feixian_bench_")))
    rng = random.Random(1)

    def say(msg: str) -> None:
        if progress:
            print(f"feixian bench-review: {msg}", file=sys.stderr, flush=True)

    now = datetime.now(UTC)
    with bench_database() as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            point = next(p for p in cfg.points if Category.OCCUPATION in p.categories)
            evidence = write_evidence(make_store(cfg.settings.evidence, cfg.data_dir), point, now - SPAN)
            started = time.perf_counter()
            seeded = seed_cases(engine, cases, evidence, cfg.points, now, detected_share)
            seed_s = time.perf_counter() - started
            say(f"{cases} cases seeded in {seed_s:.0f} s ({len(seeded.detected_ids)} awaiting review)")
            UserService(session_factory(engine)).add_user(REVIEWER, PASSWORD, "reviewer", "压测审核员")
        finally:
            engine.dispose()
        with serving(Path(config), cfg.data_dir, url) as base:
            client = signed_in(base)
            queue = time_pages(client, ["/queue"] * requests)
            say(f"queue p95 {percentiles(queue)['p95']} ms")
            case = time_pages(client, [f"/cases/{rng.choice(seeded.case_ids)}" for _ in range(requests)])
            say(f"case page p95 {percentiles(case)['p95']} ms")
            client.close()
            next_case = time_decisions(base, seeded.detected_ids, decisions)
            say(f"next case p95 {percentiles(next_case)['p95']} ms")
        machine |= {"postgresql": _postgres_version(url), "chromium": _chromium_version()}
    q, c, d = percentiles(queue), percentiles(case), percentiles(next_case)
    figures = {"queue_p95_ms": q["p95"], "case_p95_ms": c["p95"], "next_case_p95_ms": d["p95"]}
    return {
        "cases": cases,
        "cases_awaiting_review": len(seeded.detected_ids),
        "seed_s": round(seed_s, 1),
        "requests": requests,
        "queue_p50_ms": q["p50"],
        "queue_p95_ms": q["p95"],
        "case_p50_ms": c["p50"],
        "case_p95_ms": c["p95"],
        "decisions": decisions,
        "next_case_p50_ms": d["p50"],
        "next_case_p95_ms": d["p95"],
        "targets_ms": TARGETS_MS,
        "targets_met": {key: figure <= TARGETS_MS[key] for key, figure in figures.items()},
        "config": str(config),
        "machine": machine,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench-review",
        help="review UI speed with many cases in PostgreSQL: queue and case pages p50/p95, next case in Chromium; JSON",
    )
    p.add_argument(
        "--config",
        default="configs/demo.yaml",
        help="settings YAML: the points the cases are spread over and the app served (default configs/demo.yaml)",
    )
    p.add_argument("--cases", type=int, default=100_000, help="cases in the database (default 100000)")
    p.add_argument(
        "--detected-share",
        type=float,
        default=0.1,
        help="share of the cases, the newest, awaiting review (default 0.1); the rest confirmed or voided",
    )
    p.add_argument("--requests", type=int, default=200, help="GETs timed of each page (default 200)")
    p.add_argument("--decisions", type=int, default=20, help="decisions timed in Chromium (default 20)")
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    needed = args.decisions + 2  # the unmeasured first decision, and a case to land on after the last
    if args.requests < 1 or args.decisions < 1 or not 0 < args.detected_share <= 1:
        print(
            "feixian bench-review: --requests and --decisions must be at least 1, --detected-share in (0, 1]",
            file=sys.stderr,
        )
        return 2
    if round(args.cases * args.detected_share) < needed:
        print(
            f"feixian bench-review: --decisions {args.decisions} needs {needed} cases awaiting review", file=sys.stderr
        )
        return 2
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line a request would bury the progress lines
    try:
        result = bench(args.config, args.cases, args.requests, args.decisions, args.detected_share, not args.quiet)
    except (ConfigError, psycopg.OperationalError, RuntimeError) as e:
        print(f"feixian bench-review: {e}", file=sys.stderr)
        return 1
    write_json(result, args.out)
    return 0
