"""SpoolingStore's rules, with a remote that can be switched off: what is spooled, in which order it is uploaded,
what a key already held by the remote does, and what is never deleted."""

from __future__ import annotations

import pytest

from cases.spool import SpoolingStore, SpoolUploader
from cases.store import LocalObjectStore, ObjectExistsError, StoreUnavailableError

EVENT = "evidence/P1/2026/01/01/e1"


class Switchable(LocalObjectStore):
    """A local store standing in for S3 that fails like an unreachable one while `down`, and logs its puts."""

    down = False

    def __init__(self, root):
        super().__init__(root)
        self.puts: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("connection refused")

    def put(self, key, data, content_type):
        self._check()
        super().put(key, data, content_type)
        self.puts.append(key)

    def get(self, key):
        self._check()
        return super().get(key)

    def exists(self, key):
        self._check()
        return super().exists(key)


@pytest.fixture
def stores(tmp_path) -> tuple[Switchable, SpoolingStore]:
    remote = Switchable(tmp_path / "remote")
    return remote, SpoolingStore(remote, LocalObjectStore(tmp_path / "data" / "spool"))


def test_puts_are_spooled_while_down_and_read_back_from_the_spool(stores):
    remote, store = stores
    remote.down = True
    store.put(f"{EVENT}/clip.mp4", b"clip", "video/mp4")
    assert store.remote_down and store.spooled([f"{EVENT}/clip.mp4"])
    assert store.get(f"{EVENT}/clip.mp4") == b"clip"
    with pytest.raises(ObjectExistsError):
        store.put(f"{EVENT}/clip.mp4", b"other", "video/mp4")  # write-once holds in the spool too
    with pytest.raises(StoreUnavailableError):
        store.get("evidence/elsewhere.jpg")  # unknown while down: never reported absent
    with pytest.raises(ObjectExistsError, match="never deleted"):
        store.delete(f"{EVENT}/clip.mp4")


def test_the_upload_sends_files_before_manifests_and_empties_the_spool(stores):
    remote, store = stores
    remote.down = True
    for name in ("manifest.json", "original/a.jpg", "clip.mp4"):
        store.put(f"{EVENT}/{name}", name.encode(), "application/octet-stream")
    uploader = SpoolUploader(store, settle=lambda: None, initial_s=1, max_s=8)
    assert [uploader.step() for _ in range(4)] == [2, 4, 8, 8]  # down: the wait doubles to its cap
    remote.down = False
    assert uploader.step() == 1 and not store.remote_down
    assert remote.puts[-1] == f"{EVENT}/manifest.json"
    assert store.spool.list() == []
    assert remote.get(f"{EVENT}/clip.mp4") == b"clip.mp4"


def test_a_key_the_remote_already_holds_keeps_the_remote_copy(stores, caplog):
    remote, store = stores
    remote.put(f"{EVENT}/same.jpg", b"same", "image/jpeg")
    remote.put(f"{EVENT}/differs.jpg", b"remote", "image/jpeg")
    remote.down = True
    store.put(f"{EVENT}/same.jpg", b"same", "image/jpeg")
    store.put(f"{EVENT}/differs.jpg", b"spooled", "image/jpeg")
    remote.down = False
    assert store.drain() == 2
    assert remote.get(f"{EVENT}/differs.jpg") == b"remote"  # write-once: the stored object is the record
    assert store.conflicts.get(f"{EVENT}/differs.jpg") == b"spooled"  # the other copy kept aside, logged
    assert "differs from the object the store already holds" in caplog.text
    assert store.spool.list() == []
