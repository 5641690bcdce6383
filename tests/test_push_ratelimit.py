"""Per-gateway rate limits on the push API (issue 28): a gateway pushing faster than its `max_fps` gets 429
with Retry-After, other gateways and later frames are unaffected, and nothing refused reaches the bus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from push_world import PushWorld, gateway
from pydantic import ValidationError

from ingest.push_api import PUSH_PATH
from ingest.rate_limit import GatewayRateLimits, TokenBucket
from pipeline.frames import encode_jpeg

JPEG = encode_jpeg(np.zeros((24, 32, 3), np.uint8))
# The slow gateway may push one frame and then must wait about 1000 s: no test lasts that long, so the second
# push is refused however slowly the machine runs.
SLOW_FPS = 0.001


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_one_seconds_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, clock=clock)
    assert [bucket.take() for _ in range(4)] == [0.0] * 4
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.take() == 0.0
    # A long pause refills to the burst size, not beyond.
    clock.now += 3600
    assert [bucket.take() == 0.0 for _ in range(5)] == [True] * 4 + [False]


def test_a_slow_rate_still_allows_one_frame() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, clock=clock)
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(2.0)


def test_retry_after_is_whole_seconds_and_gateways_are_independent() -> None:
    clock = FakeClock()
    limits = GatewayRateLimits(
        [gateway("a", ["P1"], max_fps=2.0), gateway("b", ["P2"], max_fps=2.0), gateway("c", ["P3"])], clock
    )
    assert [limits.retry_after("a") for _ in range(3)] == [None, None, 1]
    assert limits.retry_after("b") is None
    assert all(limits.retry_after("c") is None for _ in range(1000))
    clock.now += 0.5
    assert limits.retry_after("a") is None


@pytest.mark.parametrize("bad", [0, -1, 10_001, "fast"])
def test_max_fps_has_bounds(bad) -> None:
    with pytest.raises(ValidationError, match="max_fps"):
        gateway("a", ["P1"], max_fps=bad)


class World(PushWorld):
    def __init__(self) -> None:
        super().__init__(
            gateways=[gateway("slow", ["P1", "P2"], max_fps=SLOW_FPS), gateway("free", ["P3"])],
            point_ids=["P1", "P2", "P3"],
        )
        self.at = datetime.now(UTC) - timedelta(minutes=1)

    def push(self, gid: str, point: str, body: bytes = JPEG, content_type: str = "image/jpeg"):
        self.at += timedelta(milliseconds=100)
        return self.post(point, gid, body, self.at.isoformat(), content_type)


@pytest.fixture
def world() -> World:
    return World()


def test_a_gateway_pushing_too_fast_gets_429_with_retry_after(world: World) -> None:
    assert world.push("slow", "P1").status_code == 202
    r = world.push("slow", "P1")
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 1000
    assert "pushes faster than its max_fps" in r.json()["detail"]
    # The limit is the gateway's, over all its points.
    assert world.push("slow", "P2").status_code == 429
    assert [f.point_id for f in world.published] == ["P1"]
    assert world.rejections.for_point("P1") == {"rate_limited": 1}
    assert world.rejections.for_point("P2") == {"rate_limited": 1}


def test_a_limited_gateway_does_not_slow_another(world: World) -> None:
    world.push("slow", "P1")
    assert world.push("slow", "P1").status_code == 429
    assert [world.push("free", "P3").status_code for _ in range(20)] == [202] * 20


def test_the_rate_is_judged_before_the_body(world: World) -> None:
    world.push("slow", "P1")
    # A bad body or content type from a gateway over its rate costs no parsing: 429 first.
    assert world.push("slow", "P1", body=b"junk", content_type="text/plain").status_code == 429


def test_requests_without_a_valid_token_use_up_no_gateway_rate(world: World) -> None:
    # Someone guessing tokens cannot lock the real gateway out.
    assert [world.push("guess", "P1").status_code for _ in range(5)] == [401] * 5
    assert world.push("slow", "P1").status_code == 202


def test_openapi_documents_429_with_retry_after(world: World) -> None:
    answers = world.client.get("/openapi.json").json()["paths"][PUSH_PATH]["post"]["responses"]
    assert "Retry-After" in answers["429"]["headers"]
    assert "507" in answers
