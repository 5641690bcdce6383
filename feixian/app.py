"""The web app of `feixian run` / `feixian serve`: the review UI with the push API mounted on it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI

from feixian.runtime import Runtime
from ingest.push_api import make_push_router
from pipeline.bus import BusClosed, BusFull, FrameBus
from review_ui.app import ReviewServices, create_app


def session_secret(runtime: Runtime) -> str:
    """The session-signing secret: from the environment variable the settings name, else one generated
    once and kept in the data dir, so sign-ins survive a restart."""
    env = os.environ.get(runtime.config.settings.server.secret_key_env)
    if env:
        return env
    path = Path(runtime.config.data_dir) / "session_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def build_app(runtime: Runtime, bus: FrameBus) -> FastAPI:
    cfg = runtime.config
    app = create_app(
        ReviewServices(
            cases=runtime.cases,
            users=runtime.users,
            store=runtime.store,
            secret_key=session_secret(runtime),
            points={p.id: p for p in cfg.points},
        )
    )
    app.include_router(
        make_push_router(
            gateways=cfg.settings.gateways,
            point_ids=[p.id for p in cfg.points if p.source.kind == "push"],
            max_frame_bytes=cfg.settings.server.max_frame_bytes,
            publish=bus.publish,
            full_errors=(BusFull, BusClosed),
        )
    )
    return app
