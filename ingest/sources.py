"""Pull sources: video files (replay, demo) and RTSP cameras, sampled at the point's detect fps.

Each source turns decoded frames into `Frame`s (JPEG originals, capture time) and hands them to a
publish callable (the frame bus). A file source's capture times come from the video's own clock
(`start_time` + frame index / video fps), so a replay is reproducible; an RTSP source stamps wall time
and reconnects with exponential back-off when the stream drops.
(`pipeline.frames.FpsSampler` keeps the point's rate).

A camera that offers a sub-stream beside its main one (`Source.detect_uri`) is sampled on the sub-stream, and
each sampled image travels with the main stream's frame of that moment, the last one shown at or before it:
two files are read in step on their own clocks (their rates and sizes may differ), an RTSP main stream is read
on a thread of its own that keeps its newest image.
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
Opener = Callable[[str], cv2.VideoCapture]

# An RTSP main-stream image older than this is not paired with a sub-stream image: the main stream has stalled,
# and boxes found on the sub-stream drawn on a picture a second old would miss every moving truck.
MAIN_MAX_AGE_S = 1.0


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


class FileSource:
    """Reads a video file, samples it at `detect_fps` and publishes frames.

    `realtime` paces frames on the video clock (the live demo); without it frames go out as fast as
    the bus accepts them (replay). `loop` starts again at the end, shifting capture times forward.
    `detect_path`, a sub-stream of the same scene, is what is sampled; each of its frames goes out with the
    frame of `path` shown at that moment, and the pass ends where either file ends.
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
        detect_path: str | Path | None = None,
    ):
        self.point_id = point_id
        self.path = Path(path)
        self.detect_path = None if detect_path is None else Path(detect_path)
        self.detect_fps = detect_fps
        self.start_time = start_time
        self.loop = loop
        self.realtime = realtime
        self.jpeg_quality = jpeg_quality
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _open(self, path: Path) -> tuple[cv2.VideoCapture, float]:
        if not path.is_file():
            raise SourceError(f"{self.point_id}: video file not found: {path}")
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise SourceError(f"{self.point_id}: cannot open video {path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        if not 0 < fps < 1000:
            cap.release()
            raise SourceError(f"{self.point_id}: {path} reports no usable frame rate ({fps})")
        return cap, fps

    def frames(self) -> Iterator[Frame]:
        """Sampled frames, in order, until the file ends (or forever when looping)."""
        base = self.start_time or datetime.now(UTC)
        seq = 0
        offset = 0.0  # seconds added per loop so capture times keep increasing
        wall0 = time.monotonic()
        sampled = self.detect_path or self.path
        while not self._stop.is_set():
            cap, fps = self._open(sampled)
            main = None
            sampler = FpsSampler(self.detect_fps)
            index = 0
            duration = 0.0
            try:
                if self.detect_path is not None:
                    main = ShownAt(*self._open(self.path))
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok:
                        break
                    t = index / fps
                    index += 1
                    duration = index / fps
                    if not sampler.take(t):
                        continue
                    evidence = image if main is None else main.at(t)
                    if evidence is None:
                        break  # the main stream ended: nothing to cut evidence from
                    if self.realtime:
                        delay = wall0 + offset + t - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    detect = None if main is None else image
                    yield self._frame(seq, base + timedelta(seconds=offset + t), evidence, detect)
                    seq += 1
            finally:
                cap.release()
                if main is not None:
                    main.release()
            if index == 0:
                raise SourceError(f"{self.point_id}: {sampled} has no decodable frames")
            if main is not None and main.shown == 0:
                raise SourceError(f"{self.point_id}: {self.path} has no decodable frames")
            if not self.loop:
                return
            offset += duration

    def _frame(self, seq: int, captured_at: datetime, image: np.ndarray, detect: np.ndarray | None) -> Frame:
        # No decoded pixels ride along: the detector must see the JPEG that becomes evidence (or the sub-stream's
        # JPEG), exactly as it sees a pushed frame, so a file and a push of the same frames give the same cases.
        detect_jpeg = None if detect is None else encode_jpeg(detect, self.jpeg_quality)
        return Frame(self.point_id, seq, captured_at, encode_jpeg(image, self.jpeg_quality), detect_jpeg=detect_jpeg)

    def run(self, publish: Publish) -> None:
        for frame in self.frames():
            publish(frame)


class ShownAt:
    """A video read forward in step with another clock: the frame on screen at a time, i.e. the last one that
    starts at or before it; None once the video has ended before that time. Times asked must not decrease.

    >>> class Three:  # a 10 fps video of three frames: 0, 1, 2
    ...     n = 0
    ...     def read(self):
    ...         self.n += 1
    ...         return (self.n <= 3), (self.n - 1 if self.n <= 3 else None)
    ...     def release(self): pass
    >>> video = ShownAt(Three(), fps=10)
    >>> [video.at(t) for t in (0.0, 0.04, 0.1, 0.25, 0.29, 0.3)]
    [0, 0, 1, 2, 2, None]
    """

    def __init__(self, cap: cv2.VideoCapture, fps: float):
        self._cap = cap
        self._fps = fps
        self._image: np.ndarray | None = None
        self.shown = 0  # frames read so far
        self._ended = False

    def at(self, t: float) -> np.ndarray | None:
        # The tolerance pairs frames of two clocks that start together (5 fps and 25 fps at 0.2 s) despite
        # float error, as FpsSampler does.
        while not self._ended and self.shown / self._fps <= t + 1e-6:
            ok, image = self._cap.read()
            if not ok:
                self._ended = True
                break
            self._image = image
            self.shown += 1
        if self._ended and t >= self.shown / self._fps - 1e-6:
            return None
        return self._image

    def release(self) -> None:
        self._cap.release()


class RtspStream:
    """One RTSP stream's images as they come, reopened with exponential back-off whenever it cannot be opened
    or drops, until `stop` is set.

    >>> stream = RtspStream("P main", "rtsp://camera/main", cv2.VideoCapture, 1.0, 60.0, threading.Event())
    >>> stream.down_since is not None, stream.reconnects
    (True, 0)
    """

    def __init__(
        self, name: str, url: str, opener: Opener, backoff_initial_s: float, backoff_max_s: float, stop: threading.Event
    ):
        self.name = name
        self.url = url
        self._opener = opener
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._stop = stop
        self.reconnects = 0
        # Monotonic time since which no image has come (None while images come): /readyz shows the point down.
        self.down_since: float | None = time.monotonic()

    def images(self) -> Iterator[np.ndarray]:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            cap = self._opener(self.url)
            if not cap.isOpened():
                log.warning("%s: cannot open stream, retrying in %.1f s", self.name, backoff)
                cap.release()
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                self.reconnects += 1
                continue
            try:
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok:
                        log.warning("%s: stream dropped, reconnecting", self.name)
                        self.down_since = time.monotonic()
                        break
                    backoff = self.backoff_initial_s  # a good read resets the back-off
                    self.down_since = None
                    yield image
            finally:
                cap.release()
            self.reconnects += 1
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.backoff_max_s)


class LatestImage:
    """The newest image one thread puts, for another to take while it is fresh enough.

    >>> latest = LatestImage()
    >>> latest.put("image", at=10.0)
    >>> latest.get(now=10.5, max_age=1.0), latest.get(now=11.5, max_age=1.0)
    ('image', None)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._at = 0.0

    def put(self, image: np.ndarray, at: float) -> None:
        with self._lock:
            self._image, self._at = image, at

    def get(self, now: float, max_age: float) -> np.ndarray | None:
        with self._lock:
            return self._image if self._image is not None and now - self._at <= max_age else None


class RtspSource:
    """Pulls an RTSP stream through OpenCV/FFmpeg, reconnecting with exponential back-off.

    With `detect_url` (the camera's sub-stream) that stream is sampled, and each sampled image goes out with the
    newest image of `url` (the main stream), read on a thread of its own; while the main stream has given no
    image for `MAIN_MAX_AGE_S`, sampled images are dropped.
    """

    def __init__(
        self,
        point_id: str,
        url: str,
        detect_fps: float,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        jpeg_quality: int = 90,
        opener: Opener = lambda url: cv2.VideoCapture(url, cv2.CAP_FFMPEG),
        detect_url: str | None = None,
    ):
        self.point_id = point_id
        self.url = url
        self.detect_url = detect_url
        self.detect_fps = detect_fps
        self.jpeg_quality = jpeg_quality
        self._stop = threading.Event()
        self._opener = opener
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._sampled = RtspStream(
            point_id if detect_url is None else f"{point_id} sub-stream",
            detect_url or url,
            opener,
            *self._backoff,
            self._stop,
        )
        self._main: RtspStream | None = None  # the main stream's reader while frames are paired with it
        self._main_stop = threading.Event()
        self.unpaired = 0  # sub-stream images dropped for want of a fresh main-stream image

    @property
    def reconnects(self) -> int:
        return sum(s.reconnects for s in self._streams())

    def _streams(self) -> list[RtspStream]:
        return [self._sampled] if self._main is None else [self._sampled, self._main]

    def stop(self) -> None:
        self._stop.set()
        self._main_stop.set()

    def down_for(self, now: float) -> float | None:
        """Seconds since the stream last delivered a frame (or since the source started, before the first one);
        None while it delivers. With a sub-stream, the longer of the two streams' times: frames need both.

        >>> src = RtspSource("P", "rtsp://camera/stream", detect_fps=1)
        >>> src.down_for(src._sampled.down_since + 5.0)
        5.0
        """
        since = [s.down_since for s in self._streams() if s.down_since is not None]
        return None if not since else max(0.0, now - min(since))

    def frames(self) -> Iterator[Frame]:
        sampler = FpsSampler(self.detect_fps)
        t0 = time.monotonic()
        latest = None if self.detect_url is None else self._read_main()
        seq = 0
        try:
            for image in self._sampled.images():
                now = time.monotonic()
                if not sampler.take(now - t0):
                    continue
                if latest is None:
                    frame = Frame(self.point_id, seq, datetime.now(UTC), encode_jpeg(image, self.jpeg_quality), image)
                else:
                    main = latest.get(now, MAIN_MAX_AGE_S)
                    if main is None:
                        self._unpaired()
                        continue
                    frame = Frame(
                        self.point_id,
                        seq,
                        datetime.now(UTC),
                        encode_jpeg(main, self.jpeg_quality),
                        detect_jpeg=encode_jpeg(image, self.jpeg_quality),
                        _detect_image=image,
                    )
                yield frame
                seq += 1
        finally:
            # The main stream's reader never outlives the loop it feeds.
            self._main_stop.set()

    def _read_main(self) -> LatestImage:
        """Start reading the main stream on a thread of its own; its newest image is kept in what is returned."""
        self._main_stop = threading.Event()
        if self._stop.is_set():
            self._main_stop.set()
        main = self._main = RtspStream(
            f"{self.point_id} main stream", self.url, self._opener, *self._backoff, self._main_stop
        )
        latest = LatestImage()

        def keep() -> None:
            for image in main.images():
                latest.put(image, time.monotonic())

        threading.Thread(target=keep, name=f"main-{self.point_id}", daemon=True).start()
        return latest

    def _unpaired(self) -> None:
        self.unpaired += 1
        # Logged the 1st, 2nd, 4th, 8th... time, so a main stream that stays down cannot flood the log.
        if self.unpaired & (self.unpaired - 1) == 0:
            log.warning(
                "%s: no main-stream image in the last %.1f s, sub-stream frame dropped (%d so far)",
                self.point_id,
                MAIN_MAX_AGE_S,
                self.unpaired,
            )

    def run(self, publish: Publish) -> None:
        for frame in self.frames():
            publish(frame)
