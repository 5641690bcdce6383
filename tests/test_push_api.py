"""The camera-gateway push API: every answer it can give, through FastAPI's TestClient."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from feixian.domain import Gateway
from ingest.push_api import PUSH_PATH, make_push_router
from pipeline.bus import BusFull, MemoryBus
from pipeline.frames import Frame, decode_jpeg, encode_jpeg

TOKEN = "gw1-token"
OTHER_TOKEN = "gw2-token"
MAX_BYTES = 20_000


def _gateway(gid: str, token: str, points: list[str]) -> Gateway:
    return Gateway(id=gid, token_sha256=hashlib.sha256(token.encode()).hexdigest(), points=points)


def _jpeg() -> bytes:
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:30, 20:40] = (0, 128, 255)
    return encode_jpeg(img)


def _client(publish) -> TestClient:
    app = FastAPI()
    app.include_router(
        make_push_router(
            gateways=[_gateway("gw1", TOKEN, ["P1", "P2"]), _gateway("gw2", OTHER_TOKEN, ["P3"])],
            point_ids=["P1", "P2", "P3"],
            max_frame_bytes=MAX_BYTES,
            publish=publish,
            full_errors=(BusFull,),
            retry_after_s=2,
        )
    )
    return TestClient(app)


@pytest.fixture
def published() -> list[Frame]:
    return []


@pytest.fixture
def client(published: list[Frame]) -> TestClient:
    return _client(published.append)


def _headers(token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    h = {"Content-Type": "image/jpeg", "X-Capture-Time": "2026-03-01T08:00:00.250+08:00"}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(extra)
    return h


def _url(point: str = "P1") -> str:
    return PUSH_PATH.format(point_id=point)


def test_accepted_frame_reaches_publish_intact(client: TestClient, published: list[Frame]) -> None:
    jpeg = _jpeg()
    r = client.post(_url(), content=jpeg, headers=_headers())
    assert r.status_code == 202, r.text
    assert r.json() == {"point_id": "P1", "seq": 0, "captured_at": "2026-03-01T00:00:00.250000Z"}
    [frame] = published
    assert frame.jpeg == jpeg
    assert (frame.point_id, frame.seq) == ("P1", 0)
    assert frame.captured_at == datetime(2026, 3, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    assert frame.image().shape == decode_jpeg(jpeg).shape


def test_sequence_numbers_per_point(client: TestClient, published: list[Frame]) -> None:
    jpeg = _jpeg()
    client.post(_url("P1"), content=jpeg, headers=_headers())
    client.post(_url("P1"), content=jpeg, headers=_headers())
    client.post(_url("P2"), content=jpeg, headers=_headers())
    client.post(_url("P1"), content=jpeg, headers=_headers(**{"X-Frame-Seq": "40"}))
    client.post(_url("P1"), content=jpeg, headers=_headers())
    numbered = [(f.point_id, f.seq) for f in published]
    assert numbered == [("P1", 0), ("P1", 1), ("P2", 0), ("P1", 40), ("P1", 41)]


@pytest.mark.parametrize(
    "headers",
    [
        _headers(token=None),
        _headers(token="wrong"),
        _headers(token=None, Authorization=f"Basic {TOKEN}"),
        # No token and no capture time: the token is judged first.
        {"Content-Type": "image/jpeg"},
    ],
)
def test_missing_or_bad_token_is_401(client: TestClient, published: list[Frame], headers: dict) -> None:
    r = client.post(_url(), content=_jpeg(), headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert published == []


def test_point_of_another_gateway_is_403(client: TestClient, published: list[Frame]) -> None:
    r = client.post(_url("P3"), content=_jpeg(), headers=_headers())
    assert r.status_code == 403
    assert client.post(_url("P3"), content=_jpeg(), headers=_headers(token=OTHER_TOKEN)).status_code == 202
    assert [f.point_id for f in published] == ["P3"]


def test_unknown_point_is_404(client: TestClient) -> None:
    assert client.post(_url("NOPE"), content=_jpeg(), headers=_headers()).status_code == 404


def test_declared_oversize_is_413(client: TestClient, published: list[Frame]) -> None:
    body = b"\xff\xd8" + bytes(MAX_BYTES)
    r = client.post(_url(), content=body, headers=_headers())
    assert r.status_code == 413
    assert published == []


def test_oversize_body_without_content_length_is_413(client: TestClient, published: list[Frame]) -> None:
    def chunks():
        yield b"\xff\xd8"
        for _ in range(3):
            yield bytes(MAX_BYTES // 2)

    r = client.post(_url(), content=chunks(), headers=_headers())
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert published == []


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream", ""])
def test_wrong_content_type_is_415(client: TestClient, content_type: str) -> None:
    r = client.post(_url(), content=_jpeg(), headers=_headers(**{"Content-Type": content_type}))
    assert r.status_code == 415


def test_content_type_parameters_are_accepted(client: TestClient) -> None:
    r = client.post(_url(), content=_jpeg(), headers=_headers(**{"Content-Type": "image/jpeg; q=0.9"}))
    assert r.status_code == 202


@pytest.mark.parametrize("body", [b"", b"GIF89a-not-a-jpeg", b"\xff\xd8\xff\xe0" + bytes(200)])
def test_undecodable_jpeg_is_422(client: TestClient, published: list[Frame], body: bytes) -> None:
    r = client.post(_url(), content=body, headers=_headers())
    assert r.status_code == 422
    assert "JPEG" in r.json()["detail"]
    assert published == []


# The last two are valid ISO times with no UTC equivalent (schemathesis found the first as a 500).
@pytest.mark.parametrize(
    "stamp",
    [
        "2026-03-01T08:00:00",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:00-01:00",
    ],
)
def test_naive_unparsable_or_unrepresentable_capture_time_is_422(client: TestClient, stamp: str) -> None:
    r = client.post(_url(), content=_jpeg(), headers=_headers(**{"X-Capture-Time": stamp}))
    assert r.status_code == 422
    assert "X-Capture-Time" in r.json()["detail"]


@pytest.mark.parametrize("headers", [{"X-Frame-Seq": "-1"}, {"X-Frame-Seq": "abc"}])
def test_bad_sequence_or_missing_time_is_422(client: TestClient, headers: dict) -> None:
    assert client.post(_url(), content=_jpeg(), headers=_headers(**headers)).status_code == 422
    no_time = {k: v for k, v in _headers().items() if k != "X-Capture-Time"}
    assert client.post(_url(), content=_jpeg(), headers=no_time).status_code == 422


def test_full_bus_is_503_with_retry_after() -> None:
    bus = MemoryBus(max_pending=1)
    client = _client(bus.publish)
    assert client.post(_url(), content=_jpeg(), headers=_headers()).status_code == 202
    r = client.post(_url(), content=_jpeg(), headers=_headers())
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "2"
    assert bus.pending("P1") == 1
    assert bus.consume("P1", timeout=0).seq == 0
    # The refused frame used up no number.
    assert client.post(_url(), content=_jpeg(), headers=_headers()).json()["seq"] == 1


def test_openapi_documents_binary_body_and_answers(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"][PUSH_PATH]["post"]
    assert op["summary"]
    assert op["requestBody"]["content"]["image/jpeg"]["schema"] == {"type": "string", "format": "binary"}
    assert {"202", "401", "403", "404", "413", "415", "422", "503"} <= set(op["responses"])
    assert all(r["description"] for r in op["responses"].values())
    headers = {p["name"].lower() for p in op["parameters"] if p["in"] == "header"}
    assert headers == {"x-capture-time", "x-frame-seq"}
