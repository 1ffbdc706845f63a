"""The decision ledger: every request, decision, refusal, expiry, policy decision and tool
outcome of a durable run, chained in the run store with MACs under the deployment secret
(:mod:`afk.audit.keys`).

``verify`` re-computes the chain and names the first entry that was altered, removed or
reordered; ``checkpoint`` signs the chain's head (with the store's keyring, or an explicit
``$AFK_AUDIT_KEY``), which lets ``verify`` also catch the newest entries being cut off, and a
copy of that signed head kept outside the database catches the checkpoints being deleted
too; ``export_jsonl`` writes the ledger for a SIEM. The command line:
``afk audit verify|export|checkpoint``.

Each entry kind is a class (:mod:`afk.audit.entries`: ``RequestOpened``, ``RequestDecided``,
... ``GrantUsed``), stored through one serializer, ``to_log`` / ``from_log``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from afk.audit.chain import GENESIS, Checkpoint, audit_keyring_from_env, entry_body, entry_hash
from afk.audit.export import entry_json, export_jsonl
from afk.audit.keys import Keyring, SecretKey, keyring_from_env, parse_secret
from afk.audit.verify import BadEntry, ChainChecker, LedgerError, VerifyReport, checkpoint, verify

if TYPE_CHECKING:
    from afk.audit.entries import (
        ENTRY_KINDS,
        DecisionRefused,
        Entry,
        ExecutionFinished,
        ExecutionStarted,
        GrantCreated,
        GrantRevoked,
        GrantUsed,
        LedgerEntry,
        LedgerEntryError,
        PolicyDecided,
        ReminderSent,
        RequestDecided,
        RequestEscalated,
        RequestExpired,
        RequestOpened,
        ShadowRule,
        TamperDetected,
        VoteCast,
        from_log,
        to_log,
    )


def __getattr__(name: str) -> Any:
    # The entry names load on first use: they need afk.store's LogEntry, and afk.store loads
    # afk.audit.keys (importing them here would make the two packages import each other).
    if name in __all__:
        from afk.audit import entries

        return getattr(entries, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENTRY_KINDS",
    "GENESIS",
    "BadEntry",
    "ChainChecker",
    "Checkpoint",
    "DecisionRefused",
    "Entry",
    "ExecutionFinished",
    "ExecutionStarted",
    "GrantCreated",
    "GrantRevoked",
    "GrantUsed",
    "Keyring",
    "LedgerEntry",
    "LedgerEntryError",
    "LedgerError",
    "PolicyDecided",
    "ReminderSent",
    "RequestDecided",
    "RequestEscalated",
    "RequestExpired",
    "RequestOpened",
    "SecretKey",
    "ShadowRule",
    "TamperDetected",
    "VerifyReport",
    "VoteCast",
    "audit_keyring_from_env",
    "checkpoint",
    "entry_body",
    "entry_hash",
    "entry_json",
    "export_jsonl",
    "from_log",
    "keyring_from_env",
    "parse_secret",
    "to_log",
    "verify",
]
