"""Single HTTP byte ranges (RFC 9110 section 14) over an object held in memory.

Chromium fetches `<video>` sources in ranges and cannot seek in a clip served without them.
Evidence objects are write-once, so a range asked for with `If-Range` is always still valid.
Multi-range requests are answered with the whole object, which the RFC allows.

>>> parse_range("bytes=0-99", 1000), parse_range("bytes=-100", 1000), parse_range("bytes=900-", 1000)
((0, 99), (900, 999), (900, 999))
>>> parse_range("bytes=2000-", 1000)
Traceback (most recent call last):
...
review_ui.ranges.RangeNotSatisfiable: bytes=2000- is outside an object of 1000 bytes
>>> parse_range("lines=1-2", 1000) is None
True
"""

from __future__ import annotations

import re

from starlette.responses import Response

_SINGLE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(ValueError):
    """The range lies wholly outside the object (HTTP 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte positions asked for, or None to send the whole object
    (no header, a malformed one, or several ranges)."""
    if not header:
        return None
    m = _SINGLE.fullmatch(header.strip().replace(" ", ""))
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # suffix: the last N bytes
        suffix = int(m[2])
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"{header} is outside an object of {size} bytes")
        return max(0, size - suffix), size - 1
    first = int(m[1])
    last = int(m[2]) if m[2] else size - 1
    if m[2] and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(f"{header} is outside an object of {size} bytes")
    return first, min(last, size - 1)


def range_response(data: bytes, media_type: str, range_header: str | None, headers: dict[str, str]) -> Response:
    """200 with the whole object, 206 with the asked-for part, or 416."""
    size = len(data)
    base = {"Accept-Ranges": "bytes", **headers}
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**base, "Content-Range": f"bytes */{size}"})
    if span is None:
        return Response(data, media_type=media_type, headers=base)
    first, last = span
    return Response(
        data[first : last + 1],
        status_code=206,
        media_type=media_type,
        headers={**base, "Content-Range": f"bytes {first}-{last}/{size}"},
    )
