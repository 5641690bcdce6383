"""The Redis Streams frame bus, the leases and the point owners, against the Redis server at 127.0.0.1:6379 (each
test under a key prefix of its own, deleted afterwards; skipped when the server is unreachable)."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from conftest import free_port
from fault_scenario import sqlite_event_ids, write_scenario
from prometheus_client.parser import text_string_to_metric_families

from feixian.config import load_config
from feixian.runtime import Runtime, replay
from feixian.worker_metrics import serve_metrics, worker_monitor
from pipeline.bus import BusClosed, BusFull
from pipeline.frames import Frame
from pipeline.lease_loop import LeasedPoints
from pipeline.leases import Leases
from pipeline.point_owner import PointOwner
from pipeline.redis_bus import LeaseLost, RedisBus, StreamKeys

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def client():
    c = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        c.ping()
    except redis.ConnectionError as e:
        pytest.skip(f"Redis at 127.0.0.1:6379 unreachable: {e}")
    yield c
    c.close()


@pytest.fixture
def keys(client):
    keys = StreamKeys(f"feixian-test-{secrets.token_hex(4)}")
    yield keys
    for key in client.scan_iter(f"{keys.prefix}:*"):
        client.delete(key)


def frame(point: str, seq: int) -> Frame:
    return Frame(point, seq, T + timedelta(seconds=seq), b"\xff\xd8%d" % seq)


def reader(client, keys, name: str, **kw) -> RedisBus:
    return RedisBus(
        client, keys, max_pending=kw.get("max_pending", 100), max_len=kw.get("max_len", 1000), consumer=name
    )


def test_frames_come_out_in_order_per_point_and_intact(client, keys):
    bus = RedisBus(client, keys, max_pending=10, max_len=100)
    for i in range(3):
        bus.publish(frame("A", i))
        bus.publish(frame("B", 10 + i))
    assert bus.pending("A") == bus.pending("B") == 3
    out = [bus.consume("A", timeout=1) for _ in range(3)]
    assert [(f.seq, f.captured_at, f.jpeg) for f in out] == [
        (i, T + timedelta(seconds=i), b"\xff\xd8%d" % i) for i in range(3)
    ]
    assert bus.consume("A", timeout=0.05) is None
    assert [bus.consume("B", timeout=1).seq for _ in range(3)] == [10, 11, 12]


def test_a_sub_stream_frame_keeps_both_jpegs_and_a_single_one_stays_single(client, keys):
    bus = RedisBus(client, keys, max_pending=10, max_len=100)
    bus.publish(Frame("A", 0, T, b"\xff\xd8main", detect_jpeg=b"\xff\xd8sub"))
    bus.publish(frame("A", 1))
    paired, single = bus.consume("A", timeout=1), bus.consume("A", timeout=1)
    assert (paired.jpeg, paired.detect_jpeg) == (b"\xff\xd8main", b"\xff\xd8sub")
    assert (single.jpeg, single.detect_jpeg) == (b"\xff\xd81", None)
    # An entry taken over from a dead reader (XAUTOCLAIM's reply, a mapping) keeps it too.
    owner = reader(client, keys, "w1")
    owner.publish(Frame("B", 0, T, b"\xff\xd8main", detect_jpeg=b"\xff\xd8sub"))
    owner.read("B", timeout=1)
    [(_, claimed)] = reader(client, keys, "w2").claim("B")
    assert claimed.detect_jpeg == b"\xff\xd8sub"


def test_a_full_point_pushes_back_on_queued_frames_and_on_entries_held(client, keys):
    bus = RedisBus(client, keys, max_pending=2, max_len=3, consumer="w")
    bus.publish(frame("A", 0))
    bus.publish(frame("A", 1))
    with pytest.raises(BusFull, match="queued"):
        bus.publish(frame("A", 2), block=True, timeout=0.05)
    eid, _ = bus.read("A", timeout=1)
    bus.publish(frame("A", 2))  # one read: room in the queue, and 3 entries held
    bus.read("A", timeout=1)
    with pytest.raises(BusFull, match="held"):
        bus.publish(frame("A", 3))  # nothing queued, but the stream holds 3 entries not acknowledged
    bus._local.clear()
    client.set(keys.lease("A"), "w")
    bus.commit("A", eid, b"", [eid])  # acknowledged and deleted: room again
    bus.publish(frame("A", 3))


def test_a_blocking_publish_waits_for_the_reader(client, keys):
    bus = RedisBus(client, keys, max_pending=1, max_len=100)
    bus.publish(frame("A", 0))
    t = threading.Thread(target=lambda: bus.publish(frame("A", 1), block=True, timeout=10))
    t.start()
    assert reader(client, keys, "r").consume("A", timeout=5).seq == 0
    t.join(10)
    assert reader(client, keys, "r").consume("A", timeout=5).seq == 1


def test_a_closed_point_refuses_frames_and_drains(client, keys):
    bus = RedisBus(client, keys, max_pending=10, max_len=100)
    bus.publish(frame("A", 0))
    bus.close_point("A")
    with pytest.raises(BusClosed):
        bus.publish(frame("A", 1))
    assert not bus.is_drained("A")
    assert bus.consume("A", timeout=1).seq == 0
    assert bus.is_drained("A")


def test_what_a_dead_reader_left_unacknowledged_goes_to_the_next_with_its_checkpoint(client, keys):
    pub = RedisBus(client, keys, max_pending=10, max_len=100)
    for i in range(4):
        pub.publish(frame("A", i))
    first = reader(client, keys, "w1")
    client.set(keys.lease("A"), "w1")
    read = [first.read("A", timeout=1) for _ in range(3)]
    first.commit("A", read[1][0], b"state", [read[0][0]])  # frame 1 still kept by the state, frame 2 read after
    client.set(keys.lease("A"), "w2")  # w1 died; w2 holds the point now
    second = reader(client, keys, "w2")
    saved = second.checkpoint("A")
    assert (saved.last_id, saved.state, saved.finished) == (read[1][0], b"state", False)
    claimed = second.claim("A")
    # w1 read a batch: frame 3 too, which it never processed. None of it is lost.
    assert [f.seq for _, f in claimed] == [1, 2, 3] and [eid for eid, _ in claimed[:2]] == [r[0] for r in read[1:]]
    assert second.read("A", timeout=0.05) is None


def test_reads_and_commits_need_the_lease(client, keys):
    RedisBus(client, keys, max_pending=10, max_len=100).publish(frame("A", 0))
    stale = RedisBus(client, keys, max_pending=10, max_len=100, consumer="w1", fenced=True)
    with pytest.raises(LeaseLost):
        stale.read("A", timeout=0.05)
    client.set(keys.lease("A"), "w2")
    with pytest.raises(LeaseLost):
        stale.commit("A", "0-0", b"old", [])
    assert stale.checkpoint("A") is None
    holder = RedisBus(client, keys, max_pending=10, max_len=100, consumer="w2", fenced=True)
    assert holder.read("A", timeout=1)[1].seq == 0


def test_a_lease_is_exclusive_renewable_by_its_holder_and_runs_out(client, keys):
    one, two = Leases(client, keys, "w1", 500), Leases(client, keys, "w2", 500)
    assert one.acquire("A") and not two.acquire("A")
    assert one.renew("A") and not two.renew("A")
    two.release("A")  # not its lease: nothing happens
    assert one.holder("A") == "w1"
    while one.holder("A") is not None:  # unrenewed, it runs out
        threading.Event().wait(0.05)
    assert not one.renew("A")
    assert two.acquire("A") and two.holder("A") == "w2"
    two.release("A")
    assert two.holder("A") is None


def test_workers_count_each_other_and_a_silent_one_drops_out(client, keys):
    one, two = Leases(client, keys, "w1", 60_000), Leases(client, keys, "w2", 500)
    assert one.heartbeat() == 1
    assert two.heartbeat() == 2
    two.leave()
    assert one.heartbeat() == 1
    two.heartbeat()
    while one.heartbeat() == 2:  # w2 stops beating: its heartbeat runs out
        threading.Event().wait(0.05)


def test_a_second_worker_gets_its_share_by_handover(client, keys):
    points = ["P1", "P2", "P3", "P4"]
    started: list[str] = []

    class Idle(PointOwner):
        def run(self) -> None:
            started.append(self.point_id)
            self.handover.wait(30)

    def loop(name: str) -> LeasedPoints:
        bus = RedisBus(client, keys, 10, 100, consumer=name, fenced=True)
        return LeasedPoints(points, Leases(client, keys, name, 60_000), bus, lambda pid: Idle(pid, bus, None, 1.0))

    one, two = loop("w1"), loop("w2")
    one.round()
    assert sorted(one.held) == points
    two.leases.heartbeat()
    one.round()  # two workers now: w1 hands two points over
    two.round()
    assert len(one.held) == len(two.held) == 2 and set(one.held) | set(two.held) == set(points)
    assert {Leases(client, keys, "x", 1).holder(p) for p in points} == {"w1", "w2"}
    assert len(started) == 6
    stop = threading.Event()
    stop.set()
    one.run(stop)  # stopping hands everything over and leaves
    assert not one.held and all(Leases(client, keys, "x", 1).holder(p) != "w1" for p in points)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Path, list[Frame], list[str]]:
    """One point of the fault scenario (a chair standing in the zone: one case at 5 s), its frames, and the
    event ids of its undisturbed replay."""
    config = write_scenario(tmp_path_factory.mktemp("owner") / "scenario", points=1, video_s=16.0)
    runtime = Runtime(load_config(config, config.parent / "undisturbed"))
    frames: list[Frame] = []
    runtime.source_for(runtime.config.points[0], realtime=False).run(frames.append)
    replay(runtime)
    return config, frames, sqlite_event_ids(config.parent / "undisturbed")


def run_owner(owner: PointOwner) -> threading.Thread:
    t = threading.Thread(target=owner.run)
    t.start()
    return t


def until_processed(owner: PointOwner, client, keys) -> None:
    """Wait until `owner` has processed every frame in its point's stream."""
    newest = client.xrevrange(keys.frames(owner.point_id), count=1)[0][0].decode()
    while owner.processed_through != newest:
        threading.Event().wait(0.02)


def take(client, keys, runtime: Runtime, name: str, settings_id: str = "s1") -> PointOwner:
    """The owner of the runtime's one point in worker `name`, which now holds its lease (checkpoints only when
    handing over)."""
    point = runtime.config.points[0]
    bus = RedisBus(client, keys, 1000, 1000, consumer=name, fenced=True)
    client.set(keys.lease(point.id), name)
    return PointOwner(point.id, bus, lambda: runtime.make_worker(point, live=True), 3600, settings_id)


@pytest.mark.parametrize("ends", ["handover", "death"])
def test_a_point_taken_over_mid_episode_files_exactly_the_undisturbed_case(client, keys, scenario, tmp_path, ends):
    """The first owner sees the chair arrive and stand 4 s of its 5 s dwell, then hands over (a checkpoint), or
    hands over and is taken again by a worker that reads 2 s more and dies before its next checkpoint; the last
    owner resumes the episode and files the one case once."""
    config, frames, undisturbed = scenario
    runtime = Runtime(load_config(config, tmp_path))
    point = runtime.config.points[0]
    pid = point.id
    publisher = RedisBus(client, keys, max_pending=1000, max_len=1000)

    def owner(name: str) -> PointOwner:
        return take(client, keys, runtime, name)

    for f in frames[:20]:  # 4 s at 5 fps
        publisher.publish(f)
    first = owner("w1")
    thread = run_owner(first)
    until_processed(first, client, keys)
    first.handover.set()
    thread.join(10)
    resumed = 0
    if ends == "death":
        for f in frames[20:30]:
            publisher.publish(f)
        doomed = owner("w1b")
        thread = run_owner(doomed)
        until_processed(doomed, client, keys)
        doomed.lost.set()  # as good as dead: it ends without writing, leaving its 10 frames unacknowledged
        thread.join(10)
        resumed = 10
    assert sqlite_event_ids(tmp_path) == []  # the case is filed after its post-roll, by the last owner
    last = owner("w2")
    for f in frames[20 + resumed :]:
        publisher.publish(f)
    publisher.close_point(pid)
    run_owner(last).join(60)
    assert last.resumed_frames == resumed
    assert sqlite_event_ids(tmp_path) == undisturbed
    assert last.bus.is_finished(pid) and client.xlen(keys.frames(pid)) == 0


def test_a_checkpoint_saved_under_other_settings_is_not_resumed(client, keys, scenario, tmp_path):
    """Under new settings the old state is dropped and every frame the stream still holds is judged again, from
    the oldest: here the ring buffer holds the whole episode, so the one case is the same."""
    config, frames, undisturbed = scenario
    runtime = Runtime(load_config(config, tmp_path))
    publisher = RedisBus(client, keys, max_pending=1000, max_len=1000)
    for f in frames[:20]:
        publisher.publish(f)
    first = take(client, keys, runtime, "w1", settings_id="s1")
    thread = run_owner(first)
    until_processed(first, client, keys)
    first.handover.set()
    thread.join(10)
    for f in frames[20:]:
        publisher.publish(f)
    publisher.close_point(first.point_id)
    second = take(client, keys, runtime, "w2", settings_id="s2")
    run_owner(second).join(60)
    assert second.resumed_frames == 20  # the frames the old state kept, processed again by a fresh worker
    assert sqlite_event_ids(tmp_path) == undisturbed


def test_a_workers_metrics_follow_the_points_it_holds(client, keys, scenario, tmp_path):
    """`feixian worker --metrics-port`: the points this worker holds, with serve's names, at each scrape; a point
    handed over leaves them."""
    config, frames, _ = scenario
    runtime = Runtime(load_config(config, tmp_path))
    point = runtime.config.points[0]
    publisher = RedisBus(client, keys, max_pending=1000, max_len=1000)
    for f in frames[:20]:
        publisher.publish(f)
    bus = RedisBus(client, keys, 1000, 1000, consumer="w1", fenced=True)

    def owner_for(pid: str) -> PointOwner:
        return PointOwner(pid, bus, lambda: monitor.watch(pid, runtime.make_worker(point, live=True)), 3600)

    loop = LeasedPoints([point.id], Leases(client, keys, "w1", 60_000), bus, owner_for)
    monitor = worker_monitor(loop, bus)
    assert "feixian_frames_received" not in scrape(monitor.exposition())  # nothing held yet
    loop.round()
    until_processed(loop.held[point.id].owner, client, keys)
    port = free_port()
    sampler = serve_metrics(monitor, "127.0.0.1", port)
    try:
        over_http = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        sampler.stop(5)
    for families in (scrape(monitor.exposition()), scrape(over_http.content)):
        one = {name: samples[0] for name, samples in families.items() if len(samples) == 1}
        assert one["feixian_frames_received_total"].labels == {"point": point.id}
        assert one["feixian_frames_received_total"].value == 20
        assert one["feixian_point_up"].value == 1
        assert one["feixian_bus_pending_frames"].value == 0
        detected = one["feixian_frames_detected_total"].value
        assert detected >= 1 and one["feixian_detector_seconds_count"].value == detected
        assert "feixian_cases" not in families, "case figures are serve's alone"
    stop = threading.Event()
    stop.set()
    loop.run(stop)  # hands the point over
    assert "feixian_frames_received" not in scrape(monitor.exposition())


def scrape(text: bytes) -> dict[str, list]:
    """Samples by sample name (counters as name_total) of a Prometheus exposition."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out
