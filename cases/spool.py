"""Evidence spooled to local disk while the S3 store does not answer, and uploaded when it answers again.

`SpoolingStore` stands in front of the remote store. A put the remote cannot take lands in the spool (a
`LocalObjectStore` under the data dir: write-once and fsynced, as the local backend), reads look in the spool
first, and once the remote has failed every call goes to the spool straight away until an upload pass finds the
remote answering again, so a dead store costs one connection timeout, not one per evidence file. While it is down a
key only the remote might hold reads as unavailable (`StoreUnavailableError`), never as absent.

`drain` uploads the spool, every event's files before any manifest, so the remote never holds a manifest whose
files are missing; `SpoolUploader` runs it in the background with exponential back-off and then lets the case store
clear the "evidence pending" flag of cases whose evidence has all arrived.

>>> import tempfile
>>> from cases.store import LocalObjectStore
>>> root = tempfile.mkdtemp()
>>> store = SpoolingStore(LocalObjectStore(root + "/remote"), LocalObjectStore(root + "/spool"))
>>> store.put("evidence/P1/e1/clip.mp4", b"x", "video/mp4")  # the remote answered: nothing spooled
>>> store.spooled(["evidence/P1/e1/clip.mp4"])
False
"""

from __future__ import annotations

import logging
import mimetypes
import threading
from collections.abc import Callable, Iterable

from cases.store import (
    LocalObjectStore,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStore,
    StoredObject,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

# What a probe of a remote known to be down asks for; any answer, even "absent", means it is back.
PROBE_KEY = "spool-probe"


def _upload_order(key: str) -> tuple[bool, str]:
    return key.endswith("/manifest.json"), key


def _content_type(key: str) -> str:
    # The spool keeps bytes only; every evidence file's type follows from its name (.mp4, .jpg, .json).
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class SpoolingStore:
    """An `ObjectStore` over `remote` that spools to `spool` while the remote does not answer (module docstring).

    A key spooled while the remote was down may turn out to be held by the remote already (an event built again
    after a restart): an identical object settles it, a different one is kept in `conflicts` and logged, since the
    remote's write-once object is the record."""

    def __init__(self, remote: ObjectStore, spool: LocalObjectStore, conflicts: LocalObjectStore | None = None):
        self.remote = remote
        self.spool = spool
        self.conflicts = conflicts or LocalObjectStore(spool.root.parent / "spool-conflicts")
        self._down = threading.Event()
        self._drain_lock = threading.Lock()

    @property
    def remote_down(self) -> bool:
        return self._down.is_set()

    def _remote(self, call: Callable, *args):
        if self._down.is_set():
            raise StoreUnavailableError("the evidence store is unreachable; waiting for the spool upload to reach it")
        try:
            return call(*args)
        except StoreUnavailableError as e:
            if not self._down.is_set():
                log.warning("%s; evidence is spooled to %s until it answers", e, self.spool.root)
            self._down.set()
            raise

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.spool.exists(key):
            raise ObjectExistsError(f"object already exists: {key}")
        try:
            self._remote(self.remote.put, key, data, content_type)
        except StoreUnavailableError:
            self.spool.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        try:
            return self.spool.get(key)
        except ObjectNotFoundError:
            # Not spooled, or uploaded (and removed from the spool) a moment ago.
            return self._remote(self.remote.get, key)

    def exists(self, key: str) -> bool:
        return self.spool.exists(key) or self._remote(self.remote.exists, key)

    def list(self, prefix: str = "") -> list[str]:
        return [o.key for o in self.list_stored(prefix)]

    def list_stored(self, prefix: str = "") -> list[StoredObject]:
        found = {o.key: o for o in self._remote(self.remote.list_stored, prefix)}
        found |= {o.key: o for o in self.spool.list_stored(prefix)}
        return [found[k] for k in sorted(found)]

    def delete(self, key: str) -> bool:
        if self.spool.exists(key):
            raise ObjectExistsError(f"{key} is waiting to be uploaded; spooled evidence is never deleted")
        return self._remote(self.remote.delete, key)

    def spooled(self, keys: Iterable[str]) -> bool:
        """Whether any of `keys` still waits in the spool."""
        return any(self.spool.exists(k) for k in keys)

    def drain(self) -> int:
        """Upload everything spooled and return how many objects went; raises `StoreUnavailableError` when
        the remote fails (what was uploaded so far has left the spool)."""
        with self._drain_lock:
            keys = sorted(self.spool.list(), key=_upload_order)
            if self._down.is_set():
                self.remote.exists(keys[0] if keys else PROBE_KEY)  # raises while it is still down
                log.info("evidence store answers again; %d spooled objects to upload", len(keys))
                self._down.clear()
            for key in keys:
                self._upload(key)
            return len(keys)

    def _upload(self, key: str) -> None:
        data = self.spool.get(key)
        try:
            self._remote(self.remote.put, key, data, _content_type(key))
        except ObjectExistsError:
            if self._remote(self.remote.get, key) != data:
                log.error(
                    "spooled %s differs from the object the store already holds; kept in %s", key, self.conflicts.root
                )
                if not self.conflicts.exists(key):
                    self.conflicts.put(key, data, _content_type(key))
        self.spool.delete(key)


class SpoolUploader:
    """Uploads a `SpoolingStore`'s spool in passes (run by `cases.periodic.Periodic`): one every `initial_s`
    while all is well, the wait doubling up to `max_s` while the store (or the case database) fails, back to
    `initial_s` on success. `settle` runs after each upload pass (the case store clears "evidence pending"
    where all has arrived)."""

    def __init__(self, store: SpoolingStore, settle: Callable[[], object], initial_s: float, max_s: float):
        self.store = store
        self.settle = settle
        self.initial_s = initial_s
        self.max_s = max_s
        self._wait = initial_s

    def run_once(self) -> bool:
        """One upload pass and settle; False (logged) when the store or the database failed."""
        try:
            uploaded = self.store.drain()
            if uploaded:
                log.info("uploaded %d spooled evidence objects", uploaded)
            self.settle()
        except Exception as e:  # the next pass tries again; nothing has left the spool unless uploaded
            log.warning("spooled evidence not uploaded yet: %s: %s", type(e).__name__, e)
            return False
        return True

    def step(self) -> float:
        """One pass; returns the wait before the next (the back-off)."""
        self._wait = self.initial_s if self.run_once() else min(self._wait * 2, self.max_s)
        return self._wait
