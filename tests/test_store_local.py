"""LocalObjectStore: write-once, atomic, read-only files, safe keys; make_store's configuration errors."""

from __future__ import annotations

import stat
import threading

import pytest

from cases.store import (
    EvidenceSettings,
    InvalidKeyError,
    LocalObjectStore,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStore,
    StoreConfigError,
    make_store,
    validate_key,
)

KEY = "evidence/JDZ-001/2026/01/02/abc123/original/first_seen.jpg"


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def test_put_get_exists_round_trip(store):
    assert isinstance(store, ObjectStore)
    assert not store.exists(KEY)
    store.put(KEY, b"\xff\xd8jpeg bytes", "image/jpeg")
    assert store.exists(KEY)
    assert store.get(KEY) == b"\xff\xd8jpeg bytes"
    assert store.path(KEY).read_bytes() == b"\xff\xd8jpeg bytes"


def test_put_is_write_once_and_keeps_the_first_bytes(store):
    store.put(KEY, b"first", "text/plain")
    with pytest.raises(ObjectExistsError, match="already exists"):
        store.put(KEY, b"second", "text/plain")
    assert store.get(KEY) == b"first"


def test_stored_files_are_read_only_and_no_temp_files_remain(store):
    store.put(KEY, b"x", "text/plain")
    path = store.root / KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert sorted(p.name for p in path.parent.iterdir()) == ["first_seen.jpg"]


def test_missing_objects_raise_not_found(store):
    with pytest.raises(ObjectNotFoundError, match="object not found: evidence/none"):
        store.get("evidence/none")
    with pytest.raises(ObjectNotFoundError):
        store.path("evidence/none")
    store.put("evidence/folder/file", b"x", "text/plain")
    with pytest.raises(ObjectNotFoundError):
        store.get("evidence/folder")  # a folder is not an object


def test_list_filters_by_prefix_and_sorts(store):
    for key in ["evidence/P2/b", "evidence/P1/z", "evidence/P1/a", "evidence/P10/c", "other/x"]:
        store.put(key, b"x", "text/plain")
    assert store.list("evidence/P1/") == ["evidence/P1/a", "evidence/P1/z"]
    assert store.list("evidence/P1") == ["evidence/P1/a", "evidence/P1/z", "evidence/P10/c"]
    assert store.list("evidence/P") == ["evidence/P1/a", "evidence/P1/z", "evidence/P10/c", "evidence/P2/b"]
    assert store.list() == ["evidence/P1/a", "evidence/P1/z", "evidence/P10/c", "evidence/P2/b", "other/x"]
    assert store.list("nothing/") == []


@pytest.mark.parametrize(
    "key, why",
    [
        ("", "non-empty"),
        ("../outside", r"'\.\.'"),
        ("evidence/../../etc/passwd", r"'\.\.'"),
        ("/etc/passwd", "relative"),
        ("evidence//double", "segments"),
        ("evidence/.hidden", "segments"),
        ("evidence/space name.jpg", "segments"),
        ("evidence/中文.jpg", "segments"),
        ("evidence/back\\slash", "segments"),
        ("evidence/trailing/", "segments"),
        ("x" * 600, "longer than"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(store, key, why):
    with pytest.raises(InvalidKeyError, match=why):
        validate_key(key)
    with pytest.raises(InvalidKeyError):
        store.put(key, b"x", "text/plain")
    assert list(store.root.rglob("*")) == []


def test_racing_writers_of_one_key_leave_exactly_one_winner(store):
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("evidence/race", f"writer {i}".encode(), "text/plain")
            outcomes.append(f"writer {i}")
        except ObjectExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "refused"]
    assert len(outcomes) == 8 and len(winners) == 1
    assert store.get("evidence/race") == winners[0].encode()


def test_make_store_local_lives_under_the_data_dir(tmp_path):
    store = make_store(EvidenceSettings(), tmp_path)
    assert isinstance(store, LocalObjectStore)
    assert store.root == (tmp_path / "evidence").resolve()


def test_make_store_s3_needs_endpoint_and_credentials(tmp_path, monkeypatch):
    with pytest.raises(StoreConfigError, match="s3_endpoint"):
        make_store(EvidenceSettings(backend="s3"), tmp_path)
    monkeypatch.delenv("FX_TEST_ACCESS", raising=False)
    monkeypatch.setenv("FX_TEST_SECRET", "secret")
    settings = EvidenceSettings(
        backend="s3", s3_endpoint="127.0.0.1:1", s3_access_key_env="FX_TEST_ACCESS", s3_secret_key_env="FX_TEST_SECRET"
    )
    with pytest.raises(StoreConfigError, match="FX_TEST_ACCESS"):
        make_store(settings, tmp_path)
