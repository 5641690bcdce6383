import threading
import time
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from ingest.sources import FileSource, RtspSource, SourceError
from pipeline.frames import FpsSampler
from pipeline.video import Mp4Writer

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "v.mp4"
    with Mp4Writer(path, fps=10, size=(64, 48)) as w:
        for i in range(30):  # 3 s at 10 fps
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, : 2 * i + 2] = 255
            w.write(img)
    return path


def test_sampler_keeps_target_rate_and_realigns_after_gap():
    s = FpsSampler(5)
    kept = [t for t in np.arange(0, 2, 0.04) if s.take(float(t))]
    assert len(kept) == 10
    assert s.take(10.0) and not s.take(10.1) and s.take(10.2)


def test_file_source_samples_and_stamps_video_time(video):
    frames = list(FileSource("P", video, detect_fps=5, start_time=T0).frames())
    assert len(frames) == 15
    assert [f.seq for f in frames] == list(range(15))
    assert (frames[1].captured_at - T0).total_seconds() == pytest.approx(0.2)
    assert frames[-1].jpeg[:2] == b"\xff\xd8"
    # frames are in order: the white bar grows
    widths = [int((f.image()[24] > 128).all(axis=1).sum()) for f in frames]
    assert widths == sorted(widths)


def test_file_source_loops_with_increasing_time(video):
    src = FileSource("P", video, detect_fps=5, start_time=T0, loop=True)
    it = src.frames()
    frames = [next(it) for _ in range(40)]
    src.stop()
    times = [f.captured_at for f in frames]
    assert times == sorted(times) and len(set(times)) == 40


def test_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        list(FileSource("P", tmp_path / "absent.mp4", 5).frames())
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(SourceError):
        list(FileSource("P", bad, 5).frames())


class FakeCapture:
    """Stands in for cv2.VideoCapture: the first open fails, the second yields frames then drops."""

    opens = 0

    def __init__(self, frames: int):
        FakeCapture.opens += 1
        self.ok = FakeCapture.opens > 1
        self.left = frames

    def isOpened(self):
        return self.ok

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def release(self):
        pass


def test_rtsp_reconnects_with_backoff():
    FakeCapture.opens = 0
    src = RtspSource(
        "P", "rtsp://camera/stream", detect_fps=1000, backoff_initial_s=0.01, opener=lambda url: FakeCapture(3)
    )
    it = src.frames()
    assert src.down_for(time.monotonic()) is not None  # nothing delivered yet
    got = [next(it) for _ in range(5)]  # 3 from the second open, 2 after a reconnect
    assert src.down_for(time.monotonic()) is None
    src.stop()
    assert [f.seq for f in got] == [0, 1, 2, 3, 4]
    assert FakeCapture.opens >= 3 and src.reconnects >= 2
    assert cv2.imdecode(np.frombuffer(got[0].jpeg, np.uint8), 1).shape == (8, 8, 3)


class Camera:
    """Stands in for cv2.VideoCapture on one stream of a camera: `size` images numbered in their first pixel,
    a few milliseconds apart, without end; or, `up` unset, a stream that never opens."""

    def __init__(self, size: tuple[int, int], up: bool = True):
        self.size = size
        self.up = up
        self.n = 0

    def isOpened(self):
        return self.up

    def read(self):
        time.sleep(0.002)
        self.n = (self.n + 1) % 256
        image = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        image[0, 0] = self.n
        return True, image

    def release(self):
        pass


def cameras(main_up: bool = True):
    return lambda url: Camera((64, 48), main_up) if url.endswith("main") else Camera((32, 24))


def test_rtsp_sub_stream_frames_carry_the_main_streams_newest_image():
    src = RtspSource("P", "rtsp://cam/main", detect_fps=1000, opener=cameras(), detect_url="rtsp://cam/sub")
    it = src.frames()
    got = [next(it) for _ in range(3)]
    src.stop()
    it.close()
    for frame in got:
        assert cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), 1).shape == (48, 64, 3)
        assert frame.detect_image().shape == (24, 32, 3)
    assert [f.seq for f in got] == [0, 1, 2]
    assert _ends("main-P"), "the main stream's reader must not outlive its frames"


def _ends(name: str) -> bool:
    """Whether every thread called `name` ends (within a generous wait)."""
    for t in threading.enumerate():
        if t.name == name:
            t.join(5)
    return not any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_rtsp_sub_stream_frames_wait_for_the_main_stream():
    src = RtspSource(
        "P",
        "rtsp://cam/main",
        detect_fps=1000,
        backoff_initial_s=0.01,
        opener=cameras(main_up=False),
        detect_url="rtsp://cam/sub",
    )
    got: list = []
    feeding = threading.Thread(target=src.run, args=(got.append,))
    feeding.start()
    deadline = time.monotonic() + 10
    while src.unpaired < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    src.stop()
    feeding.join(5)
    assert not feeding.is_alive() and _ends("main-P")
    assert src.unpaired >= 3 and got == []
    assert src.down_for(time.monotonic()) is not None  # the sub-stream delivers, the main one never did
