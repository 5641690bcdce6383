"""The audit trail's hash chain (legal requirement 7: every state change with actor and time).

Each transition's hash covers its own fields, the case's identity (event id and manifest hash) and
the previous transition's hash, so editing, deleting, reordering or inserting a row, or swapping the
evidence a case points to, breaks the chain from that row on.

>>> from datetime import datetime, timezone
>>> link = Link(0, None, "detected", "pipeline", datetime(2026, 1, 1, tzinfo=timezone.utc), None)
>>> h = link_hash(GENESIS, "ev1", "ab" * 32, link)
>>> len(h), h == link_hash(GENESIS, "ev1", "ab" * 32, link)
(64, True)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Link:
    """The hashed fields of one transition."""

    seq: int
    from_state: str | None
    to_state: str
    actor: str
    at: datetime
    reason: str | None
    # Facts the move set (fine, party kind, waiver, due dates): hashed with it, so they cannot be edited unseen.
    details: Mapping[str, Any] | None = None


def link_hash(prev_hash: str, event_id: str, manifest_sha256: str, link: Link) -> str:
    payload = {
        "prev": prev_hash,
        "event_id": event_id,
        "manifest_sha256": manifest_sha256,
        "seq": link.seq,
        "from": link.from_state,
        "to": link.to_state,
        "actor": link.actor,
        # Microseconds are what both SQLite and PostgreSQL keep, so the hash survives a round trip.
        "at": link.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "reason": link.reason,
    }
    # Only when present, so the hashes of transitions recorded before moves carried facts stay valid.
    if link.details:
        payload["details"] = dict(link.details)
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredLink:
    """A transition as read back: its fields plus the hashes recorded with it."""

    link: Link
    prev_hash: str
    hash: str


def chain_problems(event_id: str, manifest_sha256: str, state: str, links: Sequence[StoredLink]) -> list[str]:
    """Why the stored chain (in seq order) is not intact; empty if it is.

    The chain must start at seq 0 from no state, run without gaps, hash correctly link by link and
    end in the case's current `state`.
    """
    if not links:
        return ["no transitions recorded"]
    problems = []
    prev = GENESIS
    prev_to: str | None = None
    for i, stored in enumerate(links):
        link = stored.link
        where = f"transition seq {link.seq}"
        if link.seq != i:
            problems.append(f"{where}: expected seq {i} (missing or reordered row)")
        if link.from_state != prev_to:
            problems.append(f"{where}: from_state {link.from_state} does not follow {prev_to}")
        if stored.prev_hash != prev:
            problems.append(f"{where}: prev_hash does not match the previous transition's hash")
        if link_hash(stored.prev_hash, event_id, manifest_sha256, link) != stored.hash:
            problems.append(f"{where}: hash does not match its contents")
        prev, prev_to = stored.hash, link.to_state
    if prev_to != state:
        problems.append(f"case state {state} differs from the last transition's {prev_to}")
    return problems
