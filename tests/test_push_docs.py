"""The app of `feixian run` / `serve` serves what the README promises for gateways: `/docs` (the OpenAPI
schema as a page built on the server: no CDN, no inline script), `/openapi.json`, `/healthz` and `/readyz`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import Runtime
from ingest.push_api import PUSH_PATH
from pipeline.bus import MemoryBus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = {"extends": str(REPO / "configs" / "default.yaml"), "plates": {"model": None}}
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    runtime = Runtime(load_config(path, tmp_path / "data"))
    return TestClient(build_app(runtime, MemoryBus(4)))


def test_docs_page_lists_the_push_api_without_foreign_or_inline_code(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert f"<h2>POST {PUSH_PATH}</h2>" in page
    for code in ("202", "401", "403", "404", "413", "415", "422", "503"):
        assert f"<code>{code}</code>" in page
    assert '<a href="/openapi.json">' in page
    # Nothing to fetch from elsewhere, nothing the Content-Security-Policy would block.
    assert "<script" not in page and "<style" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


def test_openapi_schema_describes_the_push_endpoint(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    answers = schema["paths"][PUSH_PATH]["post"]["responses"]
    assert {"202", "403", "404", "413", "422"} <= set(answers)


def test_liveness_and_readiness_without_live_workers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"ready": True, "failing": [], "database": "ok", "storage": "ok", "points": {}}
