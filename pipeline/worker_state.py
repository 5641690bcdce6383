"""A point's worker state as bytes, for the checkpoint a scale-out worker leaves to its successor.

The whole `PointWorker` is pickled (tracker, rules and their timers, motion gate, pending events, stats), except
two kinds of thing written by reference: its services (detector, evidence builder, case sink, plate reader,
metrics hook), which the successor supplies from a worker it made itself, and frames, which stay in the
point's stream and are written as their entry ids. `dump` reports the entries the state refers to (its
ring buffer, the key frames of pending events): those must stay in the stream; the rest may go. The state
carries the fingerprint of the settings it was made under (`settings_id`): under other settings (a point's
zones or dwell changed, a new model) `load` refuses it (`SettingsChanged`), since the restored rules would
go on judging by the old ones.

The bytes are only ever read back from the deployment's own Redis, which holds the camera frames
themselves; like them, it must not be reachable from outside.

>>> from datetime import datetime, timezone
>>> from pipeline.frames import Frame
>>> f = Frame("P1", 0, datetime(2026, 1, 1, tzinfo=timezone.utc), b"jpeg")
>>> state, kept = dump({"buffer": [f], "n": 3}, services={}, entry_ids={id(f): "5-0"}, settings_id="s1")
>>> kept
{'5-0'}
>>> restored = load(state, services={}, frames={"5-0": f}, settings_id="s1")
>>> restored["n"], restored["buffer"][0] is f
(3, True)
>>> load(state, services={}, frames={"5-0": f}, settings_id="s2")
Traceback (most recent call last):
...
pipeline.worker_state.SettingsChanged: the state was saved under settings s1, these are s2
"""

from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Mapping
from typing import Any

from pipeline.frames import Frame

# Attributes of a PointWorker that are services, not state: the successor's own worker supplies them.
SERVICES = ("detector", "evidence", "open_case", "plate_reader", "on_detector_seconds")


class SettingsChanged(ValueError):
    """The state was saved under other settings than the ones now in force."""


def services_of(worker: object) -> dict[str, Any]:
    """The services of `worker` by name, to write by reference (`dump`) or to resolve them (`load`)."""
    return {name: getattr(worker, name) for name in SERVICES if getattr(worker, name, None) is not None}


class _Writer(pickle.Pickler):
    def __init__(self, file, services: Mapping[str, Any], entry_ids: Mapping[int, str]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._services = {id(svc): name for name, svc in services.items()}
        self._entry_ids = entry_ids
        self.kept: set[str] = set()

    def persistent_id(self, obj: Any) -> tuple[str, str] | None:
        name = self._services.get(id(obj))
        if name is not None:
            return ("service", name)
        if isinstance(obj, Frame):
            entry = self._entry_ids.get(id(obj))
            if entry is not None:
                self.kept.add(entry)
                return ("frame", entry)
        return None


class _Reader(pickle.Unpickler):
    def __init__(self, file, services: Mapping[str, Any], frames: Mapping[str, Frame]):
        super().__init__(file)
        self._services = services
        self._frames = frames

    def persistent_load(self, pid: tuple[str, str]) -> Any:
        kind, key = pid
        found = (self._services if kind == "service" else self._frames).get(key)
        if found is None:
            raise pickle.UnpicklingError(f"the saved state refers to {kind} {key}, which is not there")
        return found


def dump(
    state: object, services: Mapping[str, Any], entry_ids: Mapping[int, str], settings_id: str
) -> tuple[bytes, set[str]]:
    """`state` as bytes, with `services` and the frames in `entry_ids` (id(frame) -> entry id) by reference,
    marked with `settings_id`; also the entry ids it refers to."""
    buffer = io.BytesIO()
    writer = _Writer(buffer, services, entry_ids)
    writer.dump(state)
    # The stillness map's float arrays shrink several times; level 1 keeps it cheap.
    return settings_id.encode() + b"\n" + zlib.compress(buffer.getvalue(), 1), writer.kept


def load(data: bytes, services: Mapping[str, Any], frames: Mapping[str, Frame], settings_id: str) -> Any:
    """The state `dump` wrote, its references resolved from `services` and `frames` (entry id -> frame);
    `SettingsChanged` if it was written under other settings than `settings_id`."""
    saved_under, _, packed = data.partition(b"\n")
    if saved_under.decode() != settings_id:
        raise SettingsChanged(f"the state was saved under settings {saved_under.decode()}, these are {settings_id}")
    return _Reader(io.BytesIO(zlib.decompress(packed)), services, frames).load()
