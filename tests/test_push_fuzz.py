"""Property-based fuzzing of the edge (issue 28): generated and mutated payloads against the push API and the
frame decoder. Whatever arrives (any token, point id, capture time, sequence number, content type, and valid
JPEGs with bits flipped, cut short, sizes rewritten, markers spliced in), the answer is a 4xx or 202, never
a 5xx or an exception escaping the app, a decoded image never exceeds the pixel limit, and memory stays flat.

`make test` runs a small profile; the 10,000-payload runs are behind the `slow` marker (`make test-slow`).
Each run prints what it sent and the 5xx it saw.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from feixian.domain import Gateway
from ingest import disk_space
from ingest.disk_space import MB, FreeSpaceGuard
from ingest.frame_checks import RejectionCounts
from ingest.push_api import PUSH_PATH, make_push_router
from pipeline.bus import BusFull
from pipeline.frames import FrameDecodeError, FrameLimits, check_jpeg_size, decode_jpeg, encode_jpeg, jpeg_size

# Hypothesis keeps caches beside the working directory by default; the repo is no place for them.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="feixian-hypothesis-"))

SMALL_PROFILE = 300
FULL_PROFILE = 10_000
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MAX_BYTES = 64 * 1024
# Small on purpose: a header rewritten to any 16-bit size is often over it, and a decode that slipped past
# the header check would show as an image larger than this without costing gigabytes.
MAX_PIXELS = 256 * 256
RSS_BOUND = 400 * MB
TOKENS = {"gw": "fuzz-token", "slow": "slow-token"}
# The answers the push API documents (ingest.push_api._RESPONSES); 503 and 507 come only from the fakes below
# (a bus full every fifth frame, a disk short one probe in four).
INDUCED = {503, 507}
DOCUMENTED = {202, 401, 403, 404, 413, 415, 422, 429} | INDUCED

_SOF0 = b"\xff\xc0"


def _base_jpegs() -> list[bytes]:
    rng = np.random.default_rng(28)
    noisy = rng.integers(0, 255, (48, 64, 3), np.uint8)
    grey = cv2.cvtColor(noisy, cv2.COLOR_BGR2GRAY)
    ok, progressive = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    return [encode_jpeg(noisy), encode_jpeg(grey), progressive.tobytes(), encode_jpeg(np.zeros((8, 8, 3), np.uint8))]


BASES = _base_jpegs()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


# --- mutations of a valid JPEG ------------------------------------------------------------------------------


def _flip(data: bytearray, at: int, bit: int) -> None:
    if data:
        data[at % len(data)] ^= 1 << bit


def _truncate(data: bytearray, at: int, _: int) -> None:
    del data[at % (len(data) + 1) :]


def _rewrite_size(data: bytearray, width: int, height: int) -> None:
    sof = data.find(_SOF0)
    if sof >= 0 and sof + 9 <= len(data):
        data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
        data[sof + 7 : sof + 9] = width.to_bytes(2, "big")


def _rewrite_length(data: bytearray, nth: int, length: int) -> None:
    markers = [i for i in range(2, len(data) - 3) if data[i] == 0xFF and 0xC0 <= data[i + 1] <= 0xFE]
    if markers:
        at = markers[nth % len(markers)]
        data[at + 2 : at + 4] = length.to_bytes(2, "big")


MUTATIONS = {
    "flip": (_flip, st.integers(0, 1 << 16), st.integers(0, 7)),
    "truncate": (_truncate, st.integers(0, 1 << 16), st.just(0)),
    "size": (_rewrite_size, st.integers(0, 65535), st.integers(0, 65535)),
    "length": (_rewrite_length, st.integers(0, 20), st.integers(0, 65535)),
}


@st.composite
def mutated_jpegs(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BASES)))
    for name in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=4)):
        op, first, second = MUTATIONS[name]
        op(data, draw(first), draw(second))
    if draw(st.booleans()):
        # A marker with a random code and length spliced in anywhere: stuffed zeros, reserved codes, a second
        # frame header, an APP segment swallowing the real one.
        at = draw(st.integers(0, len(data)))
        marker = bytes([0xFF, draw(st.integers(0, 255))]) + draw(st.binary(min_size=0, max_size=24))
        data[at:at] = marker
    return bytes(data)


payloads = st.one_of(
    mutated_jpegs(),
    st.binary(max_size=512),
    st.binary(max_size=512).map(lambda b: b"\xff\xd8" + b),
    st.sampled_from(BASES),
)

# --- requests ------------------------------------------------------------------------------------------------

header_text = st.text(alphabet=st.sampled_from([chr(c) for c in range(0x20, 0x7F)]), max_size=40)
# Starlette reads header values as latin-1: any byte but the line breaks can reach it.
header_bytes = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00"))
offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))


# Stands for the next capture time of a well-behaved camera (a little later than the last one sent).
NEXT_TIME = "next"


@st.composite
def capture_times(draw: st.DrawFn) -> str | bytes | None:
    kind = draw(st.sampled_from(["near", "far", "naive", "text", "bytes", "none"]))
    if kind in ("near", "far"):
        span = 600 if kind == "near" else 200 * 365 * 86_400
        at = NOW + timedelta(seconds=draw(st.integers(-span, span)))
        return at.astimezone(draw(offsets)).isoformat()
    if kind == "naive":
        return draw(st.datetimes()).isoformat()
    return {"text": draw(header_text), "bytes": draw(header_bytes), "none": None}[kind]


def _mostly(valid, fuzzed: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` three times in four, else `fuzzed`: each part of a request is wrong now and then, so that
    requests reach every check behind the token and the point, not only the first ones."""
    return st.integers(0, 3).flatmap(lambda n: fuzzed if n == 3 else st.just(valid))


@st.composite
def push_requests(draw: st.DrawFn) -> tuple[str, dict, bytes]:
    point = draw(_mostly("P1", st.one_of(st.sampled_from(["P2", "F1", "F2", "NOPE"]), st.text(max_size=20))))
    auth = st.one_of(
        st.sampled_from([f"Bearer {t}" for t in TOKENS.values()]),
        st.builds(lambda s, t: f"{s} {t}", st.sampled_from(["Bearer", "bearer", "Basic", ""]), header_text),
        header_bytes,
        st.none(),
    )
    content_types = st.sampled_from(["IMAGE/JPEG; q=1", "image/png", "", "image/jpeg;;", None])
    headers: dict[str, str | bytes | None] = {
        "Authorization": draw(_mostly(f"Bearer {TOKENS['gw']}", auth)),
        "X-Capture-Time": draw(_mostly(NEXT_TIME, capture_times())),
        "X-Frame-Seq": draw(_mostly(None, st.one_of(st.integers(-(2**70), 2**70).map(str), header_text))),
        "Content-Type": draw(_mostly("image/jpeg", st.one_of(content_types, header_text))),
    }
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Length"] = draw(st.one_of(st.integers(0, 2**64).map(str), header_text))
    body = draw(_mostly(BASES[0], payloads))
    if draw(st.integers(0, 19)) == 0:
        body += bytes(MAX_BYTES)  # over the body limit
    url = PUSH_PATH.format(point_id=quote(point, safe=""))
    return url, {k: v for k, v in headers.items() if v is not None}, body


class FlakyBus:
    """Takes frames without keeping them, and is full every fifth time (503)."""

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, frame) -> None:
        self.calls += 1
        check_jpeg_size(frame.jpeg, MAX_PIXELS)  # only frames within the limit get this far
        if self.calls % 5 == 0:
            raise BusFull(f"{frame.point_id} full")


def _push_app(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    # The disk is short one probe in four: frames get 507 at times, as on a disk filling up.
    probes = iter(range(1 << 62))
    monkeypatch.setattr(disk_space, "free_bytes", lambda path: 0 if next(probes) % 4 == 3 else 10_000 * MB)
    gateways = [
        Gateway(id=gid, token_sha256=hashlib.sha256(tok.encode()).hexdigest(), points=["P1", "P2", "F1"])
        for gid, tok in TOKENS.items()
    ]
    gateways[1] = gateways[1].model_copy(update={"max_fps": 0.001})
    app = FastAPI()
    app.include_router(
        make_push_router(
            gateways=gateways,
            point_ids=["P1", "P2"],
            registered=["F1", "F2"],
            announced_on={"P1": date(2025, 6, 1)},
            max_frame_bytes=MAX_BYTES,
            publish=FlakyBus().publish,
            full_errors=(BusFull,),
            limits=FrameLimits(max_pixels=MAX_PIXELS, clock=lambda: NOW),
            rejections=RejectionCounts(),
            free_space=FreeSpaceGuard(Path(tempfile.gettempdir()), MB, ttl_s=0),
        )
    )
    # Exceptions inside the app are raised here rather than turned into a 500, so none can pass unseen.
    return TestClient(app, raise_server_exceptions=True)


def _fuzz_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        # The same draws on every run: a red CI is a regression, never a new draw (explore with another seed).
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


def _report(capsys: pytest.CaptureFixture, line: str) -> None:
    with capsys.disabled():
        print(f"\n{line}")


def run_push_fuzz(examples: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    client = _push_app(monkeypatch)
    statuses: Counter[int] = Counter()
    start = peak = _rss()
    next_at = NOW - timedelta(hours=1)

    @_fuzz_settings(examples)
    @given(push_requests())
    def one(request: tuple[str, dict, bytes]) -> None:
        nonlocal peak, next_at
        url, headers, body = request
        if headers.get("X-Capture-Time") == NEXT_TIME:
            next_at += timedelta(milliseconds=40)
            headers = {**headers, "X-Capture-Time": next_at.isoformat()}
        r = client.post(url, content=body, headers=headers)
        statuses[r.status_code] += 1
        peak = max(peak, _rss())
        # Every answer is one the API documents; the only 5xx are the two the fakes bring about on purpose.
        assert r.status_code in DOCUMENTED, (r.status_code, r.text)

    one()
    sent = sum(statuses.values())
    unplanned = sum(n for code, n in statuses.items() if code >= 500 and code not in INDUCED)
    _report(
        capsys,
        f"push API fuzz: {sent} payloads sent, {unplanned} 5xx seen (besides {statuses[503]} induced 503 bus full, "
        f"{statuses[507]} induced 507 disk full), "
        f"RSS grew {(peak - start) / MB:.0f} MB; answers {dict(sorted(statuses.items()))}",
    )
    assert peak - start < RSS_BOUND
    # The run reached past the token and the point checks: frames were taken and judged.
    assert {202, 401, 404, 415, 422} <= set(statuses)
    if examples >= FULL_PROFILE:
        assert {403, 413, 429, 503, 507} <= set(statuses)


def run_decoder_fuzz(examples: int, capsys: pytest.CaptureFixture) -> None:
    outcomes: Counter[str] = Counter()
    start = peak = _rss()

    @_fuzz_settings(examples)
    @given(payloads)
    def one(data: bytes) -> None:
        nonlocal peak
        try:
            declared = jpeg_size(data)
            image = decode_jpeg(data, MAX_PIXELS)
        except FrameDecodeError:
            outcomes["refused"] += 1
            return
        finally:
            peak = max(peak, _rss())
        outcomes["decoded"] += 1
        height, width = image.shape[:2]
        assert width * height <= MAX_PIXELS
        # What the decoder produced is what the header check judged.
        assert sorted(declared) == sorted((width, height))

    one()
    _report(
        capsys,
        f"frame decoder fuzz: {sum(outcomes.values())} payloads, {dict(outcomes)}, 0 uncaught exceptions, "
        f"RSS grew {(peak - start) / MB:.0f} MB",
    )
    assert peak - start < RSS_BOUND


def test_push_api_fuzz_small(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_push_fuzz(SMALL_PROFILE, monkeypatch, capsys)


def test_frame_decoder_fuzz_small(capsys: pytest.CaptureFixture) -> None:
    run_decoder_fuzz(SMALL_PROFILE, capsys)


@pytest.mark.slow
def test_push_api_fuzz_10000(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_push_fuzz(FULL_PROFILE, monkeypatch, capsys)


@pytest.mark.slow
def test_frame_decoder_fuzz_10000(capsys: pytest.CaptureFixture) -> None:
    run_decoder_fuzz(FULL_PROFILE, capsys)


def hidden_frame_header(real_width: int, real_height: int) -> bytes:
    """A JPEG that shows a header parser which follows segment lengths an 8x8 frame header, while libjpeg
    (which skips a stuffed zero 0xFF00 and scans on) reads that header as the inside of an APP1 segment and
    decodes the real frame behind it: the bypass the fuzzer's marker splicing aims at, found in review."""
    real = bytearray(encode_jpeg(np.zeros((8, 8, 3), np.uint8)))
    _rewrite_size(real, real_width, real_height)
    small_sof = b"\xff\xc0\x00\x11\x08\x00\x08\x00\x08\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    # Our parser: marker 0x00 of length 4, then the small frame header. libjpeg: 2 stray bytes, then APP1
    # whose length is the small header's first two bytes (0xFFC0).
    head = b"\xff\xd8\xff\x00\x00\x04\xff\xe1" + small_sof
    return head + bytes(0xFFC0 - len(small_sof)) + bytes(real[2:])


def test_a_frame_header_hidden_behind_a_stuffed_zero_is_refused() -> None:
    bomb = hidden_frame_header(300, 300)
    with pytest.raises(FrameDecodeError, match="0xFF00 is no marker"):
        decode_jpeg(bomb, MAX_PIXELS)
