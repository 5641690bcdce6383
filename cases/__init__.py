"""cases: evidence storage, the case store, its lifecycle and audit trail."""

from cases.records import NewCase

__all__ = ["NewCase"]
