"""The push API alone on an app, its frame bus a list: what the push tests send, and what got through."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from fastapi.testclient import TestClient

from feixian.domain import Gateway
from ingest.frame_checks import RejectionCounts
from ingest.push_api import PUSH_PATH, make_push_router
from pipeline.frames import Frame


def gateway(gid: str, points: list[str], token: str | None = None, max_fps: float | None = None) -> Gateway:
    """A gateway whose bearer token is `token` (by default its id)."""
    digest = hashlib.sha256((token or gid).encode()).hexdigest()
    return Gateway(id=gid, token_sha256=digest, points=points, max_fps=max_fps)


class PushWorld:
    """`make_push_router` for `gateways` and the push points `point_ids` (the rest of its arguments as given),
    taking frames up to 100 kB; `published` holds what reached the bus, `rejections` what was refused."""

    def __init__(self, gateways: list[Gateway], point_ids: list[str], **router_args) -> None:
        self.published: list[Frame] = []
        self.rejections = RejectionCounts()
        app = FastAPI()
        app.include_router(
            make_push_router(
                gateways=gateways,
                point_ids=point_ids,
                max_frame_bytes=100_000,
                publish=self.published.append,
                rejections=self.rejections,
                **router_args,
            )
        )
        self.client = TestClient(app)

    def post(self, point: str, token: str, body: bytes, stamp: str, content_type: str = "image/jpeg"):
        """One frame to `point`'s push endpoint, sent with `token` and capture time `stamp`."""
        return self.client.post(
            PUSH_PATH.format(point_id=point),
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type, "X-Capture-Time": stamp},
        )
