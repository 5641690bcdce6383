"""pipeline.detector_slots: no more detector calls at once than the cores can run, the other workers waiting."""

from __future__ import annotations

import threading
import time

import pytest
import supervision as sv

from pipeline.detector_slots import SlotLimitedDetector, slots_for


class Overlap:
    """Counts the calls in flight at once (each holds its slot a little while)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0
        self.metadata = {"feixian_model": "stand-in"}

    def _call(self) -> sv.Detections:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        time.sleep(0.01)
        with self.lock:
            self.now -= 1
        return sv.Detections.empty()

    def detect(self, image) -> sv.Detections:
        return self._call()

    def detect_regions(self, image, rects) -> sv.Detections:
        return self._call()


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_at_most_slots_calls_run_at_once_and_every_call_is_answered(slots: int) -> None:
    inner = Overlap()
    limited = SlotLimitedDetector(inner, slots)

    def worker(k: int) -> None:
        for _ in range(5):
            limited.detect(None) if k % 2 else limited.detect_regions(None, [(0, 0, 32, 32)])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.calls == 40
    assert inner.most == slots, "the slots are used, and never more"


def test_the_rest_passes_through_and_no_slot_is_refused() -> None:
    limited = SlotLimitedDetector(Overlap(), 2)
    assert limited.metadata == {"feixian_model": "stand-in"}
    with pytest.raises(ValueError, match="at least 1"):
        SlotLimitedDetector(Overlap(), 0)


def test_slots_follow_the_cores_and_each_calls_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert [slots_for(t) for t in (0, 1, 2, 3, 8, 16)] == [1, 8, 4, 2, 1, 1]
