"""Every entry kind: the ``Entry`` union and ``ENTRY_CLASSES``, what ``from_log`` reads a
stored row's kind against. Loading it builds every kind, so only readers of the whole
ledger (and the type checker) do."""

from __future__ import annotations

from afk.audit.entries._kinds import RequestDecided
from afk.audit.entries._other_kinds import (
    GrantCreated,
    GrantRevoked,
    GrantUsed,
    ReminderSent,
    RequestEscalated,
)
from afk.audit.entries._rarer_kinds import DecisionRefused, TamperDetected, VoteCast
from afk.audit.entries._run_kinds import (
    ExecutionFinished,
    ExecutionStarted,
    PolicyDecided,
    RequestExpired,
    RequestOpened,
)

Entry = (
    RequestOpened
    | RequestDecided
    | RequestExpired
    | VoteCast
    | DecisionRefused
    | ReminderSent
    | RequestEscalated
    | ExecutionStarted
    | ExecutionFinished
    | PolicyDecided
    | TamperDetected
    | GrantCreated
    | GrantRevoked
    | GrantUsed
)

ENTRY_CLASSES: tuple[type[Entry], ...] = (
    RequestOpened,
    RequestDecided,
    RequestExpired,
    VoteCast,
    DecisionRefused,
    ReminderSent,
    RequestEscalated,
    ExecutionStarted,
    ExecutionFinished,
    PolicyDecided,
    TamperDetected,
    GrantCreated,
    GrantRevoked,
    GrantUsed,
)

__all__ = ["ENTRY_CLASSES", "Entry"]
