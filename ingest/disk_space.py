"""Free space on the evidence folder's filesystem, checked before a pushed frame is taken.

When the disk that holds the evidence runs low, new frames are refused at the edge (507) rather than
accepted and then lost half-written with a case: what is already stored stays intact, and the gateway
knows to hold on to its frames. The probe is cached for `ttl_s`, so a gateway pushing many frames a second
costs one `statvfs` a second, not one per frame.

>>> FreeSpaceGuard("/", min_free_bytes=MB).shortage() is None
True
>>> FreeSpaceGuard("/", min_free_bytes=2**62).shortage()  # doctest: +ELLIPSIS
'evidence folder / has ... MB free, below the 4398046511104 MB floor (evidence.min_free_mb)'
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from time import monotonic

MB = 1024 * 1024


def free_bytes(path: str) -> int:
    """Bytes free to an unprivileged writer on the filesystem holding `path` (the one probe of the disk)."""
    return shutil.disk_usage(path).free


def _existing(path: Path) -> Path:
    """`path`, or its nearest existing parent: the evidence folder is made on the first write, and its
    filesystem is the one the write will need space on."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


class FreeSpaceGuard:
    """Says whether the filesystem holding `path` has at least `min_free_bytes` free (0 turns it off).

    The disk is asked through this module's `free_bytes` and the cache timed by its `monotonic`, both looked
    up at each check, so a test can stand in for a full disk and a passing second without filling either."""

    def __init__(
        self,
        path: str | Path,
        min_free_bytes: int,
        ttl_s: float = 1.0,
    ):
        self.path = Path(path)
        self.min_free_bytes = min_free_bytes
        self._ttl_s = ttl_s
        self._checked: tuple[float, str | None] | None = None
        self._lock = threading.Lock()

    def _probe(self) -> str | None:
        try:
            free = free_bytes(str(_existing(self.path)))
        except OSError as e:
            return f"evidence folder {self.path}: free space unknown ({e.strerror or e})"
        if free >= self.min_free_bytes:
            return None
        return (
            f"evidence folder {self.path} has {free // MB} MB free, below the {self.min_free_bytes // MB} MB floor "
            "(evidence.min_free_mb)"
        )

    def shortage(self) -> str | None:
        """None when there is room, else why not (the message a 507 and /readyz show)."""
        if self.min_free_bytes <= 0:
            return None
        with self._lock:
            now = monotonic()
            if self._checked is None or now - self._checked[0] >= self._ttl_s:
                self._checked = (now, self._probe())
            return self._checked[1]
