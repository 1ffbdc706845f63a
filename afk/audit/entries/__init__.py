"""One class per decision-ledger entry kind, and the one serializer between them and the
store's ``LogEntry`` rows (:func:`to_log`, :func:`from_log`), as :mod:`afk.core.events` is
for run events. Every afk writer builds a typed entry and stores ``to_log(entry)``; readers
that look inside payloads read ``from_log(row)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from afk._lazy import lazy_exports
from afk.audit.entries._codec import LedgerEntryError, entry_payload, from_log, to_log
from afk.audit.entries._kinds import _ELSEWHERE, LedgerEntry, RequestDecided, Who, who

if TYPE_CHECKING:
    from afk.audit.entries._codec import ENTRY_KINDS
    from afk.audit.entries._other_kinds import (
        GrantCreated,
        GrantRevoked,
        GrantUsed,
        ReminderSent,
        RequestEscalated,
    )
    from afk.audit.entries._rarer_kinds import DecisionRefused, TamperDetected, VoteCast
    from afk.audit.entries._registry import ENTRY_CLASSES, Entry
    from afk.audit.entries._run_kinds import (
        ExecutionFinished,
        ExecutionStarted,
        PolicyDecided,
        RequestExpired,
        RequestOpened,
        ShadowRule,
    )

# What a plain decision writes loads with the package; the other kinds, the union and the registry
# load on first use, from where ._kinds says they are built.
_LAZY: dict[str, str] = {"ENTRY_KINDS": "afk.audit.entries._codec", **_ELSEWHERE}

__all__ = [
    "ENTRY_CLASSES",
    "ENTRY_KINDS",
    "DecisionRefused",
    "Entry",
    "ExecutionFinished",
    "ExecutionStarted",
    "GrantCreated",
    "GrantRevoked",
    "GrantUsed",
    "LedgerEntry",
    "LedgerEntryError",
    "PolicyDecided",
    "ReminderSent",
    "RequestDecided",
    "RequestEscalated",
    "RequestExpired",
    "RequestOpened",
    "ShadowRule",
    "TamperDetected",
    "VoteCast",
    "Who",
    "entry_payload",
    "from_log",
    "to_log",
    "who",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
