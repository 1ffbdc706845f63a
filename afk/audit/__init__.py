"""The decision ledger: every request, decision, refusal, expiry, policy decision and tool
outcome of a durable run, hash-chained in the run store.

``verify`` re-computes the chain and names the first entry that was altered, removed or
reordered; ``checkpoint`` signs the chain's head with an HMAC key (``$AFK_AUDIT_KEY``), which
lets ``verify`` also catch the newest entries being cut off; ``export_jsonl`` writes the
ledger for a SIEM. The command line: ``afk audit verify|export|checkpoint``.
"""

from __future__ import annotations

from afk.audit.chain import GENESIS, Checkpoint, entry_hash, key_from_env, parse_key
from afk.audit.export import entry_json, export_jsonl
from afk.audit.verify import BadEntry, ChainChecker, LedgerError, VerifyReport, checkpoint, verify

__all__ = [
    "GENESIS",
    "BadEntry",
    "ChainChecker",
    "Checkpoint",
    "LedgerError",
    "VerifyReport",
    "checkpoint",
    "entry_hash",
    "entry_json",
    "export_jsonl",
    "key_from_env",
    "parse_key",
    "verify",
]
