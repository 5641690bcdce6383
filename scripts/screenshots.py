"""Take the README's screenshots: the review queue, a case, a party and the supervisor page, in Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs]

Nothing needs to run first: the script seeds a throw-away demo (configs/demo.yaml in a temporary data dir) through
the app's own services: evidence of a rendered street (`training.review_bench.write_evidence`), shopkeepers
imported as `feixian parties import` does, and a fortnight of cases moved through the lifecycle by its roles on a
clock of their own; it serves the deployed app (`feixian.app.build_app`) and signs in as a reviewer, then as a
supervisor. The PNGs are reduced to 256 colours, which keeps each under 200 KB.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from cases.lifecycle import State, TransitionError
from cases.parties import PartyService
from cases.party_import import import_parties, read_rows
from cases.procedure import Move
from cases.service import CaseService
from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import Runtime
from pipeline.bus import MemoryBus
from training.review_bench import CHROMIUM, CHROMIUM_ARGS, write_evidence

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
PASSWORD = "feixian-demo"
USERS = [("demo", "reviewer", "演示审核员"), ("li", "reviewer", "李审核"), ("wang", "legal", "王法制")]
USERS += [("zhou", "supervisor", "周主管")]
MERCHANTS = (
    "name,shop,licence_no,contact,point_id,zones\n张三,张记水果,91310115MA1K4AB30P,13800000001,JDZ-001,front-24\n"
)
S = State
# The path of a penalised case, each step by the role that takes it; a first minor violation is warned and closed.
PENALTY = [(S.CONFIRMED, "demo", None, None), (S.FILED, "wang", None, Move(fine_yuan=200))]
PENALTY += [(S.NOTIFIED, "wang", None, None), (S.DECIDED, "wang", "陈述期届满 / statement window closed", None)]
PENALTY += [(S.DELIVERED, "li", None, None), (S.PUBLISHED, "wang", None, None), (S.EXECUTED, "li", None, None)]
PENALTY += [(S.CLOSED, "zhou", None, None)]
WARNING = [(S.CONFIRMED, "li", None, None), (S.WARNED, "wang", None, None)]
WARNING += [(S.CLOSED, "li", "复查已整改 / corrected on recheck", None)]
VOID = [(S.VOIDED, "demo", "车牌不清 / plate unreadable", None)]
VIEWPORT = {"width": 1280, "height": 800}


class Clock:
    """The seed's clock, moved from step to step."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def seed(rt: Runtime, now: datetime, n: int = 22) -> None:
    """`n` cases at JDZ-001 over the last fortnight, oldest furthest along; the newest five await review."""
    for name, role, display in USERS:
        rt.users.add_user(name, PASSWORD, role, display)
    parties = PartyService(rt.sessions, rt.config.settings.parties)
    with rt.sessions() as s:
        zones = {p.id: {z.id for z in p.zones} for p in rt.config.points}
        import_parties(s, parties, read_rows("merchant", MERCHANTS, zones), "screenshots", now)
        s.commit()
    point = next(p for p in rt.config.points if p.id == "JDZ-001")
    rng = random.Random(27)
    clock = Clock(now)
    cases = CaseService(rt.sessions, procedure=rt.cases.procedure, clock=clock)
    for i in range(n):
        clock.now = now - timedelta(days=14) + timedelta(hours=i * 15 + rng.uniform(0, 4))
        case_id = cases.open_case(write_evidence(rt.store, point, clock.now))[0].id
        if i >= n - 5:
            continue
        # Only the shop's first violation is let off with a warning; two confirmed cases wait past their target.
        path = WARNING if i == 0 else VOID if i % 6 == 5 else PENALTY[:1] if i in (10, 14) else PENALTY
        for target, user, reason, move in path:
            clock.now += timedelta(hours=rng.uniform(1, 14))
            if target == S.DECIDED:
                clock.now = max(clock.now, cases.get(case_id).statement_due_at)
            if target == S.CLOSED and path is WARNING:
                clock.now = max(clock.now, cases.get(case_id).recheck_due_at)
            if clock.now > now - timedelta(hours=1):
                break  # still in this stage today
            try:
                cases.transition(case_id, target, user, reason, move)
            except TransitionError:
                break  # the procedure holds it here (a first violation is warned, not filed)
        with rt.sessions() as s:
            parties.bind_unbound(s)  # as an import does: the zone's one shopkeeper is the case's party
            s.commit()


@contextmanager
def serving(rt: Runtime) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(build_app(rt, MemoryBus()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/queue")


def shoot(page: Page, path: Path, full_page: bool = False) -> None:
    page.screenshot(path=str(path), full_page=full_page)
    Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def take(base: str, out: Path) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
        sign_in(page, base, "demo")
        shoot(page, out / "review-queue.png")
        page.locator("a[href^='/cases/']").first.click()
        page.wait_for_selector("video")
        page.wait_for_function("() => document.querySelector('video').readyState >= 2")
        page.eval_on_selector("video", "v => { v.muted = true; v.currentTime = v.duration / 2; }")
        page.wait_for_function("() => !document.querySelector('video').seeking")
        shoot(page, out / "review-case.png")
        page.close()

        page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
        sign_in(page, base, "zhou")
        page.goto(f"{base}/parties")
        page.locator("table a[href^='/parties/']").first.click()
        shoot(page, out / "party-page.png", full_page=True)
        page.goto(f"{base}/supervisor?days=14")
        shoot(page, out / "supervisor-page.png", full_page=True)
        browser.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs", help="folder for the PNGs")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("DATABASE_URL", None)  # the demo's own SQLite file in the temporary data dir
    with tempfile.TemporaryDirectory(prefix="feixian-screenshots-") as data:
        rt = Runtime(load_config(CONFIG, Path(data)))
        seed(rt, datetime.now(UTC))
        with serving(rt) as base:
            take(base, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
