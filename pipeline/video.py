"""Browser-playable H.264 MP4 writing (PyAV's libx264; OpenCV's wheel writes no H.264).

>>> import numpy as np
>>> frames = [np.full((48, 64, 3), i * 40, np.uint8) for i in range(5)]
>>> encode_mp4(frames, fps=5)[4:8]
b'ftyp'
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class Mp4Writer:
    """Writes BGR frames of one size into an H.264 (yuv420p) MP4 with the index up front (faststart),
    so Chromium's <video> can start playing before the whole file arrives. Faststart rewrites the file
    in a second pass, hence a path rather than a stream."""

    def __init__(self, target: str | Path, fps: float, size: tuple[int, int], crf: int = 26):
        width, height = size
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs even frame sizes, got {width}x{height}")
        self._container = av.open(
            str(target),
            mode="w",
            format="mp4",
            options={"movflags": "+faststart"},
        )
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = "yuv420p"
        # A fixed GOP and no B-frame reordering keep seeking in the review page exact.
        self._stream.options = {"crf": str(crf), "preset": "veryfast", "g": str(max(1, int(fps * 2))), "bf": "0"}
        self._size = size
        self.frames_written = 0

    def write(self, bgr: np.ndarray) -> None:
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            raise ValueError(f"frame size {bgr.shape[1]}x{bgr.shape[0]} differs from the clip's {self._size}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_mp4(frames: Iterable[np.ndarray], fps: float) -> bytes:
    """Encode BGR frames (all one size) to MP4 bytes."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to encode")
    with tempfile.TemporaryDirectory(prefix="feixian-mp4-") as tmp:
        path = Path(tmp) / "clip.mp4"
        with Mp4Writer(path, fps, (first.shape[1], first.shape[0])) as w:
            w.write(first)
            for f in it:
                w.write(f)
        return path.read_bytes()
