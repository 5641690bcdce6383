"""The unit that travels on the frame bus.

A frame carries its JPEG bytes (the untouched original that becomes evidence, and what a Redis stream
can carry) and decodes lazily. From a camera that offers a sub-stream beside its main one (`Source.detect_uri`)
it also carries the sub-stream's JPEG of the same moment, which the detector looks at: the main stream's stays
the evidence, and is decoded only where a crop of it is needed.

>>> import cv2, numpy as np
>>> ok, buf = cv2.imencode(".jpg", np.zeros((4, 6, 3), np.uint8))
>>> f = Frame("JDZ-001", 0, datetime(2026, 1, 1, tzinfo=UTC), buf.tobytes())
>>> f.image().shape
(4, 6, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

# 4096x4096: above a 4K camera's 3840x2160, and its decoded BGR image (48 MiB) is still affordable.
DEFAULT_MAX_PIXELS = 4096 * 4096

# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range
# but are tables, not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and the restart markers RST0-7.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
# Codes libjpeg never reads as a segment. 0x00 (a "stuffed zero") it skips, scanning on for the next marker,
# where a length-following parser would jump: bytes hiding a small frame header from libjpeg inside an APP
# segment while showing it to us made a 5000x5000 image pass as 8x8. The reserved 0x02-0xBF it refuses.
_NOT_SEGMENTS = frozenset(range(0x00, 0xC0)) - _STANDALONE_MARKERS


class FrameDecodeError(ValueError):
    """The bytes are not a decodable JPEG."""


class ImageTooLargeError(FrameDecodeError):
    """The JPEG declares more pixels than the limit; it is refused before it is decoded."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the JPEG's frame header declares them, read without decoding anything.

    A few hundred bytes can declare 60000x60000 pixels, so this is what an edge checks before a decode.

    >>> ok, buf = cv2.imencode(".jpg", np.zeros((4, 6, 3), np.uint8))
    >>> jpeg_size(buf.tobytes())
    (6, 4)
    >>> jpeg_size(b"\\xff\\xd8\\xff\\xc0\\x00\\x11\\x08\\x4e\\x20\\x4e\\x20")
    (20000, 20000)
    """
    if data[:2] != b"\xff\xd8":
        raise FrameDecodeError("not a JPEG (missing SOI marker)")
    i = 2
    while True:
        # A marker is 0xFF and a code; any number of 0xFF fill bytes may come between.
        start = i
        while i < len(data) and data[i] == 0xFF:
            i += 1
        if i == start or i >= len(data):
            raise FrameDecodeError("truncated or corrupt JPEG header (no frame header found)")
        marker = data[i]
        i += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):
            raise FrameDecodeError("JPEG has no frame header before its image data")
        if marker in _NOT_SEGMENTS:
            raise FrameDecodeError(f"corrupt JPEG header: 0xFF{marker:02X} is no marker before the frame header")
        if i + 2 > len(data):
            raise FrameDecodeError("truncated JPEG header")
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            raise FrameDecodeError(f"corrupt JPEG header: segment length {length}")
        if marker in _SOF_MARKERS:
            if length < 7 or i + 7 > len(data):
                raise FrameDecodeError("truncated JPEG frame header")
            height = int.from_bytes(data[i + 3 : i + 5], "big")
            width = int.from_bytes(data[i + 5 : i + 7], "big")
            if width == 0 or height == 0:
                # Height 0 defers it to a DNL marker after the scan: unknowable without decoding.
                raise FrameDecodeError(f"JPEG declares no usable size ({width}x{height})")
            return width, height
        i += length


def check_jpeg_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """The declared (width, height), or `ImageTooLargeError` when they exceed `max_pixels`."""
    width, height = jpeg_size(data)
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"JPEG declares {width}x{height} pixels, more than the {max_pixels} allowed (frames are not decoded "
            "beyond that)"
        )
    return width, height


def decode_jpeg(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The BGR image; its declared size is checked against `max_pixels` first, so a decompression bomb costs
    a header parse, not gigabytes."""
    check_jpeg_size(data, max_pixels)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise FrameDecodeError(f"JPEG could not be decoded: {e.err or e}") from e
    if img is None:
        raise FrameDecodeError("JPEG could not be decoded")
    return img


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class FpsSampler:
    """Keeps frames at a target rate from a stream of timestamps (seconds), on a grid of the rate's period: a
    source faster than the rate gives one frame a period even where its own frames do not fall on the grid
    (5 fps sampled to 2 fps: gaps of 0.6 and 0.4 s, two frames a second).

    >>> sampler = FpsSampler(target_fps=5)
    >>> [sampler.take(i / 25) for i in range(6)]
    [True, False, False, False, False, True]
    >>> two = FpsSampler(target_fps=2)
    >>> [round(i / 5, 1) for i in range(11) if two.take(i / 5)]
    [0.0, 0.6, 1.0, 1.6, 2.0]
    """

    def __init__(self, target_fps: float):
        if target_fps <= 0:
            raise ValueError("target_fps must be positive")
        self.period = 1.0 / target_fps
        self._next: float | None = None

    def due(self, t: float) -> bool:
        """Whether a frame at `t` would be kept (nothing is recorded)."""
        # The tolerance keeps 25 -> 5 fps at exactly every 5th frame despite float error.
        return self._next is None or t >= self._next - 1e-6

    def take(self, t: float) -> bool:
        """Whether a frame at `t` is kept; a kept frame sets when the next one is due."""
        if not self.due(t):
            return False
        # A gap longer than a period re-aligns the grid instead of bursting to catch up.
        if self._next is None or t - self._next > self.period:
            self._next = t + self.period
        else:
            self._next += self.period
        return True


@dataclass(eq=False)
class Frame:
    """One camera frame: point, per-point sequence number, capture time (UTC) and JPEG bytes, and where the
    camera has a sub-stream, its JPEG of the same moment (`detect_jpeg`).

    >>> small = cv2.imencode(".jpg", np.zeros((2, 3, 3), np.uint8))[1].tobytes()
    >>> big = cv2.imencode(".jpg", np.zeros((4, 6, 3), np.uint8))[1].tobytes()
    >>> f = Frame("P1", 0, datetime(2026, 1, 1, tzinfo=UTC), big, detect_jpeg=small)
    >>> f.detect_image().shape, f.detect_scale()
    ((2, 3, 3), (2.0, 2.0))
    """

    point_id: str
    seq: int
    captured_at: datetime
    jpeg: bytes
    _image: np.ndarray | None = field(default=None, repr=False)
    detect_jpeg: bytes | None = field(default=None, repr=False)
    _detect_image: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.captured_at.tzinfo is None:
            raise ValueError("captured_at must be timezone-aware")
        self.captured_at = self.captured_at.astimezone(UTC)

    def image(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """The decoded BGR image (decoded once, then cached); `FrameDecodeError` if it cannot or may not be."""
        if self._image is None:
            self._image = decode_jpeg(self.jpeg, max_pixels)
        return self._image

    def detect_image(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """The image to detect on: the sub-stream's where there is one (decoded once, then cached), else
        `image()`. The main stream's JPEG is held to `max_pixels` too, by its header alone: a frame whose
        evidence may not be decoded is refused here, like a single stream's, not when its case is filed."""
        if self.detect_jpeg is None:
            return self.image(max_pixels)
        check_jpeg_size(self.jpeg, max_pixels)
        if self._detect_image is None:
            self._detect_image = decode_jpeg(self.detect_jpeg, max_pixels)
        return self._detect_image

    def detect_scale(self) -> tuple[float, float]:
        """(x, y) factors from the detect image's pixels to the main stream's, read from the JPEG headers (no
        decode); (1.0, 1.0) without a sub-stream."""
        if self.detect_jpeg is None:
            return 1.0, 1.0
        (w, h), (dw, dh) = jpeg_size(self.jpeg), jpeg_size(self.detect_jpeg)
        return w / dw, h / dh

    def release_image(self) -> None:
        """Drop the decoded pixels (buffers keep only the JPEGs; a 640x360 image is ~20x its JPEG)."""
        self._image = None
        self._detect_image = None


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FrameLimits:
    """What a frame must satisfy before work is spent on it, at the push API and in the worker alike."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    # None: no clock check (a replay runs on its video's own clock, which may be any date).
    max_ahead: timedelta | None = timedelta(minutes=5)
    clock: Callable[[], datetime] = utc_now

    def ahead_of_clock(self, captured_at: datetime) -> timedelta | None:
        """How far `captured_at` lies beyond the clock plus the allowed skew; None when it does not."""
        if self.max_ahead is None:
            return None
        excess = captured_at - (self.clock() + self.max_ahead)
        return excess if excess > timedelta(0) else None
