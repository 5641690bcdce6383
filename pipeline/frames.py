"""The unit that travels on the frame bus.

A frame carries its JPEG bytes (the untouched original that becomes evidence, and what a Redis stream
can carry) and decodes lazily.

>>> import cv2, numpy as np
>>> ok, buf = cv2.imencode(".jpg", np.zeros((4, 6, 3), np.uint8))
>>> f = Frame("JDZ-001", 0, datetime(2026, 1, 1, tzinfo=UTC), buf.tobytes())
>>> f.image().shape
(4, 6, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np


class FrameDecodeError(ValueError):
    """The bytes are not a decodable JPEG."""


def decode_jpeg(data: bytes) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise FrameDecodeError("not a JPEG (missing SOI marker)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise FrameDecodeError("JPEG could not be decoded")
    return img


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


@dataclass(eq=False)
class Frame:
    """One camera frame: point, per-point sequence number, capture time (UTC) and JPEG bytes."""

    point_id: str
    seq: int
    captured_at: datetime
    jpeg: bytes
    _image: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.captured_at.tzinfo is None:
            raise ValueError("captured_at must be timezone-aware")
        self.captured_at = self.captured_at.astimezone(UTC)

    def image(self) -> np.ndarray:
        """The decoded BGR image (decoded once, then cached)."""
        if self._image is None:
            self._image = decode_jpeg(self.jpeg)
        return self._image

    def release_image(self) -> None:
        """Drop the decoded pixels (buffers keep only the JPEG; a 640x360 image is ~20x its JPEG)."""
        self._image = None
