"""Take the README's screenshots from a running `make run` demo with headless Debian Chromium.

    .venv/bin/python scripts/readme_screenshot.py [--url http://127.0.0.1:8000] [--out docs]

Signs in as the demo reviewer, saves the queue and the first case of each family.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--user", default="demo")
    p.add_argument("--password", default="feixian-demo")
    p.add_argument("--out", default="docs")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{a.url}/login")
        page.fill("input[name=username]", a.user)
        page.fill("input[name=password]", a.password)
        page.click("button[type=submit]")
        page.goto(f"{a.url}/queue")
        page.screenshot(path=str(out / "review-queue.png"))
        links = page.locator("a[href^='/cases/']")
        if links.count() == 0:
            raise SystemExit("the queue is empty: wait for the demo to raise cases")
        links.first.click()
        page.wait_for_selector("video")
        page.eval_on_selector("video", "v => { v.muted = true; v.currentTime = v.duration ? v.duration / 2 : 0; }")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "review-case.png"))
        browser.close()
    print(f"wrote {out / 'review-queue.png'} and {out / 'review-case.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
