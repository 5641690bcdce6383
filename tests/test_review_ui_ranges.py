"""HTTP byte ranges over evidence objects (what lets Chromium seek in a clip)."""

from __future__ import annotations

import pytest

from review_ui.ranges import RangeNotSatisfiable, parse_range, range_response

DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=0-1023", (0, 1023)),
        ("bytes=1000-5000", (1000, 1023)),  # the end is clipped to the object
        ("bytes=1000-", (1000, 1023)),
        ("bytes=-24", (1000, 1023)),
        ("bytes=-5000", (0, 1023)),
        (" bytes = 5 - 9 ", (5, 9)),
    ],
)
def test_satisfiable_ranges(header: str, span: tuple[int, int]) -> None:
    assert parse_range(header, len(DATA)) == span


@pytest.mark.parametrize(
    "header", [None, "", "bytes=", "bytes=-", "bytes=9-5", "items=0-5", "bytes=0-5,10-15", "bytes=a-b"]
)
def test_ignored_ranges_mean_the_whole_object(header: str | None) -> None:
    assert parse_range(header, len(DATA)) is None


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=2000-3000", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, len(DATA))


def test_empty_object_has_no_satisfiable_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_responses() -> None:
    whole = range_response(DATA, "video/mp4", None, {"Cache-Control": "no-store"})
    assert (whole.status_code, whole.body, whole.headers["accept-ranges"]) == (200, DATA, "bytes")
    assert whole.headers["cache-control"] == "no-store"

    part = range_response(DATA, "video/mp4", "bytes=10-19", {})
    assert (part.status_code, part.body) == (206, DATA[10:20])
    assert part.headers["content-range"] == "bytes 10-19/1024"
    assert part.headers["content-length"] == "10"
    assert part.headers["content-type"] == "video/mp4"

    outside = range_response(DATA, "video/mp4", "bytes=5000-", {})
    assert (outside.status_code, outside.headers["content-range"]) == (416, "bytes */1024")
