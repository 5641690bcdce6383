"""The frame bus over Redis Streams, for scale-out: `feixian serve` publishes, `feixian worker` processes consume.

Each point has a stream of its frames and one consumer group; the worker holding a point's lease
(pipeline.leases) reads it. Delivery is at-least-once: a frame stays in the stream, unacknowledged, until its
reader has saved a checkpoint of the point's state past it and no longer keeps it (its ring buffer holds
frames for evidence), so a worker that dies leaves both for the next owner (`claim`, `checkpoint`).

Back-pressure as the `FrameBus` protocol says: `max_pending` frames queued and not yet read, and at most
`max_len` entries held in all (queued plus kept), before a publish is refused with `BusFull`. The bound is
checked before the XADD, in one script, rather than by XADD's MAXLEN: trimming would drop the oldest entries,
which are exactly the frames a worker keeps for evidence and for its successor.

Reads and commits by a worker are fenced by its lease: once another worker holds the point, they fail
(`LeaseLost`), so a worker that stalled past its lease cannot take frames from its successor or overwrite
its checkpoint.

>>> keys = StreamKeys("feixian")
>>> keys.frames("JDZ-001"), keys.lease("JDZ-001")
('feixian:frames:JDZ-001', 'feixian:lease:JDZ-001')
>>> entry_order("1700000000000-2") < entry_order("1700000000000-10")
True
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import redis
from pydantic import BaseModel, ConfigDict, Field

from pipeline.bus import BusClosed, BusFull
from pipeline.frames import Frame

GROUP = "workers"
# Entries read per round trip; the rest wait in the reader's local queue, in order.
READ_BATCH = 16
POLL_MIN_S = 0.01
POLL_MAX_S = 0.1


class RedisBusSettings(BaseModel):
    """The `bus.redis:` section: where the streams live and how workers share the points."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis server (redis:// or rediss:// URL).")
    key_prefix: str = Field(
        default="feixian",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every key, so several installations can share one server.",
    )
    max_len: int = Field(
        default=4096,
        ge=64,
        le=1_000_000,
        description="Entries a point's stream may hold: frames queued plus the frames its worker keeps for "
        "evidence (pre-roll + 60 s + post-roll at the point's detect_fps). A publish beyond it is refused.",
    )
    lease_ms: int = Field(
        default=5000,
        ge=500,
        le=60_000,
        description="How long a worker's hold on a point lasts unrenewed (renewed every quarter of it): a dead "
        "worker's points move to another after at most about 1.25 times this.",
    )
    checkpoint_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds between checkpoints of a point's state: a new owner re-reads at most this much.",
    )


class LeaseLost(RuntimeError):
    """Another worker holds the point now: stop working on it without writing anything."""


@dataclass(frozen=True)
class StreamKeys:
    """Names of the keys under one prefix."""

    prefix: str

    def frames(self, point_id: str) -> str:
        return f"{self.prefix}:frames:{point_id}"

    def queued(self, point_id: str) -> str:
        return f"{self.prefix}:queued:{point_id}"

    def closed(self, point_id: str) -> str:
        return f"{self.prefix}:closed:{point_id}"

    def lease(self, point_id: str) -> str:
        return f"{self.prefix}:lease:{point_id}"

    def checkpoint(self, point_id: str) -> str:
        return f"{self.prefix}:checkpoint:{point_id}"

    def workers(self) -> str:
        return f"{self.prefix}:workers"


@dataclass(frozen=True)
class Checkpoint:
    """A point's saved state: the last entry it covers and the worker's state (pipeline.worker_state)."""

    last_id: str
    state: bytes
    finished: bool


def entry_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable pair (the strings do not sort: "1-10" < "1-2")."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


_PUBLISH = """
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then return -2 end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return -3 end
redis.call('INCR', KEYS[2])
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
"""

_READ = """
if ARGV[4] == '1' and redis.call('GET', KEYS[3]) ~= ARGV[2] then return redis.error_reply('LEASE_LOST') end
local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if not got then return {} end
local entries = got[1][2]
redis.call('DECRBY', KEYS[2], #entries)
return entries
"""

_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'last_id', ARGV[3], 'state', ARGV[4], 'finished', ARGV[5])
for i = 6, #ARGV, 500 do
  local last = math.min(i + 499, #ARGV)
  redis.call('XACK', KEYS[3], ARGV[2], unpack(ARGV, i, last))
  redis.call('XDEL', KEYS[3], unpack(ARGV, i, last))
end
return 1
"""


class RedisBus:
    """A `FrameBus` over Redis Streams. `consumer` names the reading worker; with `fenced` its reads and commits
    need the point's lease to hold that name (pipeline.leases).

    >>> bus = RedisBus(redis.Redis(), StreamKeys("doc"), max_pending=8, max_len=64)  # no I/O until used
    >>> bus.consumer is None
    True
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: StreamKeys,
        max_pending: int,
        max_len: int,
        consumer: str | None = None,
        fenced: bool = False,
    ):
        if fenced and consumer is None:
            raise ValueError("a fenced reader needs a consumer name")
        self.client = client
        self.keys = keys
        self.max_pending = max_pending
        self.max_len = max_len
        self.consumer = consumer
        self.fenced = fenced
        self._publish = client.register_script(_PUBLISH)
        self._read = client.register_script(_READ)
        self._commit = client.register_script(_COMMIT)
        self._grouped: set[str] = set()
        self._local: dict[str, deque[tuple[str, Frame]]] = {}

    @classmethod
    def connect(
        cls, settings: RedisBusSettings, max_pending: int, consumer: str | None = None, fenced: bool = False
    ) -> RedisBus:
        client = redis.Redis.from_url(settings.url)
        return cls(client, StreamKeys(settings.key_prefix), max_pending, settings.max_len, consumer, fenced)

    # -- publishing (ingest) --

    def publish(self, frame: Frame, block: bool = False, timeout: float | None = None) -> None:
        """Append a frame to its point's stream. A full point raises `BusFull` at once, or after `timeout` when
        `block` is set (None: wait as long as it takes); a closed one raises `BusClosed`."""
        pid = frame.point_id
        keys = [self.keys.frames(pid), self.keys.queued(pid), self.keys.closed(pid)]
        fields = ["seq", frame.seq, "at", frame.captured_at.isoformat(), "jpeg", frame.jpeg]
        if frame.detect_jpeg is not None:
            fields += ["detect_jpeg", frame.detect_jpeg]
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = POLL_MIN_S
        while True:
            answer = self._publish(keys=keys, args=[self.max_pending, self.max_len, *fields])
            if answer == -1:
                raise BusClosed(f"point {pid} is closed")
            if answer not in (-2, -3):
                return
            if not block or (deadline is not None and time.monotonic() >= deadline):
                what = "frames queued" if answer == -2 else "entries held"
                raise BusFull(f"point {pid}: stream full ({what})")
            time.sleep(wait)
            wait = min(wait * 2, POLL_MAX_S)

    def close_point(self, point_id: str) -> None:
        """No more frames for the point: its reader drains what is queued, files what it holds, and ends."""
        self.client.set(self.keys.closed(point_id), 1)

    def pending(self, point_id: str) -> int:
        return int(self.client.get(self.keys.queued(point_id)) or 0) + len(self._local.get(point_id, ()))

    def is_drained(self, point_id: str) -> bool:
        return bool(self.client.exists(self.keys.closed(point_id))) and self.pending(point_id) == 0

    # -- reading (the point's owner) --

    def consume(self, point_id: str, timeout: float | None = None) -> Frame | None:
        got = self.read(point_id, timeout)
        return got[1] if got is not None else None

    def read(self, point_id: str, timeout: float | None = None) -> tuple[str, Frame] | None:
        """The point's next frame not yet read by the group, with its entry id; None after `timeout` seconds
        (None: wait until one comes). It stays unacknowledged until `commit` says otherwise."""
        local = self._local.setdefault(point_id, deque())
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = POLL_MIN_S
        while not local:
            local.extend(self._read_batch(point_id))
            if local or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(wait if deadline is None else max(0.0, min(wait, deadline - time.monotonic())))
            wait = min(wait * 2, POLL_MAX_S)
        return local.popleft() if local else None

    def _read_batch(self, point_id: str) -> list[tuple[str, Frame]]:
        self._ensure_group(point_id)
        keys = [self.keys.frames(point_id), self.keys.queued(point_id), self.keys.lease(point_id)]
        args = [GROUP, self.consumer or "reader", READ_BATCH, "1" if self.fenced else "0"]
        try:
            entries = self._read(keys=keys, args=args)
        except redis.ResponseError as e:
            if "LEASE_LOST" in str(e):
                raise LeaseLost(f"point {point_id}: lease held by another worker") from None
            raise
        return [(_text(eid), _frame(point_id, fields)) for eid, fields in entries]

    def claim(self, point_id: str) -> list[tuple[str, Frame]]:
        """Take over every entry of the point read but not acknowledged (by a worker that died, or by this one
        before a restart), oldest first: the frames the checkpoint keeps and those read after it."""
        self._ensure_group(point_id)
        self._local.pop(point_id, None)
        claimed: list[tuple[str, Frame]] = []
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self.client.xautoclaim(
                self.keys.frames(point_id), GROUP, self.consumer or "reader", 0, start_id=cursor, count=500
            )
            claimed += [(_text(eid), _frame(point_id, fields)) for eid, fields in entries if fields]
            if _text(cursor) == "0-0":
                return claimed

    def checkpoint(self, point_id: str) -> Checkpoint | None:
        saved = self.client.hgetall(self.keys.checkpoint(point_id))
        if not saved:
            return None
        return Checkpoint(_text(saved[b"last_id"]), saved[b"state"], saved[b"finished"] == b"1")

    def commit(self, point_id: str, last_id: str, state: bytes, done: list[str], finished: bool = False) -> None:
        """Save the point's state as of entry `last_id` and acknowledge and delete the entries `done` (read, and
        kept by the state no longer), in one step that needs this worker's lease."""
        keys = [self.keys.lease(point_id), self.keys.checkpoint(point_id), self.keys.frames(point_id)]
        args = [self.consumer or "", GROUP, last_id, state, "1" if finished else "0", *done]
        if not self._commit(keys=keys, args=args):
            raise LeaseLost(f"point {point_id}: lease held by another worker; checkpoint not saved")

    def is_finished(self, point_id: str) -> bool:
        """The point was closed, and its last owner drained it and filed everything."""
        return self.client.hget(self.keys.checkpoint(point_id), "finished") == b"1"

    def _ensure_group(self, point_id: str) -> None:
        if point_id in self._grouped:
            return
        try:
            self.client.xgroup_create(self.keys.frames(point_id), GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._grouped.add(point_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _frame(point_id: str, fields: dict[bytes, bytes] | list[bytes]) -> Frame:
    # A script's reply carries the fields as a flat list, redis-py's XAUTOCLAIM as a mapping.
    if not isinstance(fields, dict):
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    at = datetime.fromisoformat(_text(fields[b"at"]))
    return Frame(point_id, int(fields[b"seq"]), at, fields[b"jpeg"], detect_jpeg=fields.get(b"detect_jpeg"))
