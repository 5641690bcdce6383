"""Pull sources: video files (replay, demo) and RTSP cameras, sampled at the point's detect fps.

Each source turns decoded frames into `Frame`s (JPEG originals, capture time) and hands them to a
publish callable (the frame bus). A file source's capture times come from the video's own clock
(`start_time` + frame index / video fps), so a replay is reproducible; an RTSP source stamps wall time
and reconnects with exponential back-off when the stream drops.
(`pipeline.frames.FpsSampler` keeps the point's rate).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from pipeline.frames import FpsSampler, Frame, encode_jpeg

log = logging.getLogger(__name__)

Publish = Callable[[Frame], None]


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


class FileSource:
    """Reads a video file, samples it at `detect_fps` and publishes frames.

    `realtime` paces frames on the video clock (the live demo); without it frames go out as fast as
    the bus accepts them (replay). `loop` starts again at the end, shifting capture times forward.
    """

    def __init__(
        self,
        point_id: str,
        path: str | Path,
        detect_fps: float,
        start_time: datetime | None = None,
        loop: bool = False,
        realtime: bool = False,
        jpeg_quality: int = 90,
    ):
        self.point_id = point_id
        self.path = Path(path)
        self.detect_fps = detect_fps
        self.start_time = start_time
        self.loop = loop
        self.realtime = realtime
        self.jpeg_quality = jpeg_quality
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _open(self) -> tuple[cv2.VideoCapture, float]:
        if not self.path.is_file():
            raise SourceError(f"{self.point_id}: video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"{self.point_id}: cannot open video {self.path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        if not 0 < fps < 1000:
            cap.release()
            raise SourceError(f"{self.point_id}: {self.path} reports no usable frame rate ({fps})")
        return cap, fps

    def frames(self) -> Iterator[Frame]:
        """Sampled frames, in order, until the file ends (or forever when looping)."""
        base = self.start_time or datetime.now(UTC)
        seq = 0
        offset = 0.0  # seconds added per loop so capture times keep increasing
        wall0 = time.monotonic()
        while not self._stop.is_set():
            cap, fps = self._open()
            sampler = FpsSampler(self.detect_fps)
            index = 0
            duration = 0.0
            try:
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok:
                        break
                    t = index / fps
                    index += 1
                    duration = index / fps
                    if not sampler.take(t):
                        continue
                    if self.realtime:
                        delay = wall0 + offset + t - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    yield self._frame(seq, base + timedelta(seconds=offset + t), image)
                    seq += 1
            finally:
                cap.release()
            if index == 0:
                raise SourceError(f"{self.point_id}: {self.path} has no decodable frames")
            if not self.loop:
                return
            offset += duration

    def _frame(self, seq: int, captured_at: datetime, image: np.ndarray) -> Frame:
        # No decoded pixels ride along: the detector must see the JPEG that becomes evidence, exactly
        # as it sees a pushed frame, so a file and a push of the same frames give the same cases.
        return Frame(self.point_id, seq, captured_at, encode_jpeg(image, self.jpeg_quality))

    def run(self, publish: Publish) -> None:
        for frame in self.frames():
            publish(frame)


class RtspSource:
    """Pulls an RTSP stream through OpenCV/FFmpeg, reconnecting with exponential back-off."""

    def __init__(
        self,
        point_id: str,
        url: str,
        detect_fps: float,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        jpeg_quality: int = 90,
        opener: Callable[[str], cv2.VideoCapture] = lambda url: cv2.VideoCapture(url, cv2.CAP_FFMPEG),
    ):
        self.point_id = point_id
        self.url = url
        self.detect_fps = detect_fps
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.jpeg_quality = jpeg_quality
        self._opener = opener
        self._stop = threading.Event()
        self.reconnects = 0
        # Monotonic time since which no frame has come (None while frames come): /readyz shows the point down.
        self._down_since: float | None = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def down_for(self, now: float) -> float | None:
        """Seconds since the stream last delivered a frame (or since the source started, before the first one);
        None while it delivers.

        >>> src = RtspSource("P", "rtsp://camera/stream", detect_fps=1)
        >>> src.down_for(src._down_since + 5.0)
        5.0
        """
        since = self._down_since
        return None if since is None else max(0.0, now - since)

    def frames(self) -> Iterator[Frame]:
        seq = 0
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            cap = self._opener(self.url)
            if not cap.isOpened():
                log.warning("%s: cannot open stream, retrying in %.1f s", self.point_id, backoff)
                cap.release()
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                self.reconnects += 1
                continue
            sampler = FpsSampler(self.detect_fps)
            t0 = time.monotonic()
            try:
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok:
                        log.warning("%s: stream dropped, reconnecting", self.point_id)
                        self._down_since = time.monotonic()
                        break
                    backoff = self.backoff_initial_s  # a good read resets the back-off
                    self._down_since = None
                    if not sampler.take(time.monotonic() - t0):
                        continue
                    yield Frame(
                        self.point_id,
                        seq,
                        datetime.now(UTC),
                        encode_jpeg(image, self.jpeg_quality),
                        image,
                    )
                    seq += 1
            finally:
                cap.release()
            self.reconnects += 1
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.backoff_max_s)

    def run(self, publish: Publish) -> None:
        for frame in self.frames():
            publish(frame)
