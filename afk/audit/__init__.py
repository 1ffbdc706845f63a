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

import sys
import types
from typing import TYPE_CHECKING, Any

from afk._lazy import lazy_exports
from afk.audit.chain import GENESIS, Checkpoint, audit_keyring_from_env, entry_body, entry_hash
from afk.audit.keys import Keyring, SecretKey, keyring_from_env, parse_secret

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
    from afk.audit.export import entry_json, export_jsonl
    from afk.audit.verify import (
        BadEntry,
        ChainChecker,
        LedgerError,
        VerifyReport,
        checkpoint,
        verify,
    )


# Loaded on first use. The entry names need afk.store's LogEntry, and afk.store loads
# afk.audit.keys (importing them here would make the two packages import each other);
# verify and export are what `afk audit` runs, while every store command loads this package.
_ELSEWHERE = {
    **dict.fromkeys(
        ("BadEntry", "ChainChecker", "LedgerError", "VerifyReport", "checkpoint", "verify"),
        "afk.audit.verify",
    ),
    "entry_json": "afk.audit.export",
    "export_jsonl": "afk.audit.export",
}


class _Package(types.ModuleType):
    """This package's module type. ``afk.audit.verify`` names the function, also once its
    module has loaded: the import system sets a package's attribute to each submodule it
    loads, which (verify loading on first use, not with the package) would otherwise leave
    ``from afk.audit import verify`` holding the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "verify" and isinstance(value, types.ModuleType):
            value = value.verify
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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

_LAZY = {
    **{name: "afk.audit.entries" for name in __all__ if name not in globals()},
    **_ELSEWHERE,
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
