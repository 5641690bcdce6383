"""The push API refuses implausible capture times and decompression bombs with a 4xx naming the reason,
counts each refusal, and lets nothing of a refused frame reach the frame bus (issue 28)."""

from __future__ import annotations

import resource
import tracemalloc
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from push_world import PushWorld, gateway

from pipeline.frames import FrameLimits, encode_jpeg

TOKEN = "gw-token"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ANNOUNCED = date(2025, 6, 1)


def small_jpeg() -> bytes:
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:30, 20:40] = (0, 128, 255)
    return encode_jpeg(img)


def declaring(width: int, height: int) -> bytes:
    """A real, small JPEG whose frame header is rewritten to declare `width` x `height` pixels: what a
    decoder would try to allocate for, though the data cannot fill it."""
    data = bytearray(encode_jpeg(np.zeros((8, 8, 3), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


class World(PushWorld):
    def __init__(self) -> None:
        super().__init__(
            gateways=[gateway("gw", ["P1", "F1"], token=TOKEN)],
            point_ids=["P1", "P2"],
            registered=["F1", "F2"],
            announced_on={"P1": ANNOUNCED},
            limits=FrameLimits(max_pixels=4096 * 4096, max_ahead=timedelta(minutes=5), clock=lambda: NOW),
        )

    def push(self, at: datetime | str, body: bytes | None = None, point: str = "P1"):
        stamp = at if isinstance(at, str) else at.isoformat()
        return self.post(point, TOKEN, small_jpeg() if body is None else body, stamp)


@pytest.fixture
def world() -> World:
    return World()


def test_a_frame_stamped_2099_is_refused_and_later_frames_still_flow(world: World) -> None:
    r = world.push("2099-01-01T00:00:00+08:00")
    assert r.status_code == 422
    assert "ahead of the server clock" in r.json()["detail"]
    assert world.published == []
    # The refused frame set nothing: correctly stamped frames after it are taken.
    assert [world.push(NOW - timedelta(seconds=s)).status_code for s in (2, 1)] == [202, 202]
    assert world.rejections.for_point("P1") == {"future": 1}


def test_clock_skew_within_the_limit_is_accepted(world: World) -> None:
    assert world.push(NOW + timedelta(minutes=4)).status_code == 202
    assert world.push(NOW + timedelta(minutes=6)).status_code == 422


@pytest.mark.parametrize("stamp", ["1970-01-01T00:00:00Z", "2025-05-31T23:59:59Z"])
def test_a_frame_before_the_point_was_announced_is_refused(world: World, stamp: str) -> None:
    r = world.push(stamp)
    assert r.status_code == 422
    assert "before the point's announcement on 2025-06-01" in r.json()["detail"]
    assert world.published == []
    assert world.rejections.for_point("P1") == {"before_announcement": 1}


def test_a_point_without_an_announcement_date_is_not_judged_by_one(world: World) -> None:
    assert world.push("2020-01-01T00:00:00Z", point="P2").status_code == 403  # not this gateway's point
    assert world.rejections.for_point("P2") == {}


def test_a_frame_before_the_last_accepted_one_is_refused(world: World) -> None:
    assert world.push(NOW).status_code == 202
    r = world.push(NOW - timedelta(seconds=1))
    assert r.status_code == 422
    assert "before the point's last accepted frame" in r.json()["detail"]
    # Same instant again (a camera repeating a timestamp) is not out of order; later is fine.
    assert world.push(NOW).status_code == 202
    assert world.push(NOW + timedelta(seconds=1)).status_code == 202
    assert [f.captured_at for f in world.published] == [NOW, NOW, NOW + timedelta(seconds=1)]
    assert world.rejections.for_point("P1") == {"out_of_order": 1}


def test_a_refused_image_does_not_advance_the_last_accepted_time(world: World) -> None:
    assert world.push(NOW, body=b"\xff\xd8 not a jpeg").status_code == 422
    assert world.push(NOW - timedelta(seconds=5)).status_code == 202


@pytest.mark.parametrize("size", [(20000, 20000), (60000, 60000), (65535, 65535), (4097, 4096)])
def test_a_jpeg_declaring_too_many_pixels_is_413_before_any_decode(world: World, size: tuple[int, int]) -> None:
    bomb = declaring(*size)
    assert len(bomb) < 1000
    tracemalloc.start()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        r = world.push(NOW, body=bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert r.status_code == 413, r.text
    assert f"declares {size[0]}x{size[1]} pixels" in r.json()["detail"]
    # Decoding 20000x20000 would take 1.2 GB; the header check stays within a few MB.
    assert peak < 20_000_000
    assert grown_kib < 100_000
    assert world.published == []
    assert world.rejections.for_point("P1") == {"too_many_pixels": 1}


def test_the_largest_allowed_size_is_still_taken(world: World) -> None:
    # Exactly 4096x4096 passes the header check; the bytes cannot fill it, and libjpeg pads what is missing.
    assert world.push(NOW, body=declaring(4096, 4096)).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"GIF89a",
        b"\xff\xd8",  # SOI alone
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # truncated inside the first segment
        b"\xff\xd8\xff\xc0\x00\x11\x08\x00",  # truncated inside the frame header
        b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x01\x00",  # height 0 (DNL): size unknowable from the header
        b"\xff\xd8\xff\xda\x00\x08",  # image data before any frame header
        b"\xff\xd8\xff\xe0\x00\x00",  # a segment length below 2
    ],
)
def test_non_jpeg_or_truncated_header_is_422(world: World, body: bytes) -> None:
    r = world.push(NOW, body=body)
    assert r.status_code == 422, r.text
    assert world.published == []


def test_point_of_the_registry_the_gateway_may_not_push_for_is_403(world: World) -> None:
    r = world.push(NOW, point="F2")
    assert (r.status_code, r.json()["detail"]) == (403, "gateway 'gw' may not push for 'F2'")


def test_point_the_gateway_lists_but_that_takes_no_pushed_frames_is_403(world: World) -> None:
    r = world.push(NOW, point="F1")
    assert (r.status_code, r.json()["detail"]) == (403, "point 'F1' takes no pushed frames")


def test_unregistered_point_is_404(world: World) -> None:
    assert world.push(NOW, point="NOPE").status_code == 404
