"""One class per decision-ledger entry kind, and the one serializer between them and the
store's ``LogEntry`` rows (:func:`to_log`, :func:`from_log`), as :mod:`afk.core.events` is
for run events. Every afk writer builds a typed entry and stores ``to_log(entry)``; readers
that look inside payloads read ``from_log(row)``."""

from __future__ import annotations

from afk.audit.entries._codec import ENTRY_KINDS, LedgerEntryError, entry_payload, from_log, to_log
from afk.audit.entries._kinds import (
    ENTRY_CLASSES,
    DecisionRefused,
    Entry,
    ExecutionFinished,
    ExecutionStarted,
    GrantCreated,
    GrantRevoked,
    GrantUsed,
    LedgerEntry,
    PolicyDecided,
    ReminderSent,
    RequestDecided,
    RequestEscalated,
    RequestExpired,
    RequestOpened,
    ShadowRule,
    TamperDetected,
    VoteCast,
    Who,
    who,
)

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
