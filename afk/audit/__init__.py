"""The decision ledger: every request, decision, refusal, expiry, policy decision and tool
outcome of a durable run, chained in the run store with MACs under the deployment secret
(:mod:`afk.audit.keys`).

``verify`` re-computes the chain and names the first entry that was altered, removed or
reordered; ``checkpoint`` signs the chain's head (with the store's keyring, or an explicit
``$AFK_AUDIT_KEY``), which lets ``verify`` also catch the newest entries being cut off, and a
copy of that signed head kept outside the database catches the checkpoints being deleted
too; ``export_jsonl`` writes the ledger for a SIEM. The command line:
``afk audit verify|export|checkpoint``.
"""

from __future__ import annotations

from afk.audit.chain import GENESIS, Checkpoint, audit_keyring_from_env, entry_body, entry_hash
from afk.audit.export import entry_json, export_jsonl
from afk.audit.keys import Keyring, SecretKey, keyring_from_env, parse_secret
from afk.audit.verify import BadEntry, ChainChecker, LedgerError, VerifyReport, checkpoint, verify

__all__ = [
    "GENESIS",
    "BadEntry",
    "ChainChecker",
    "Checkpoint",
    "Keyring",
    "LedgerError",
    "SecretKey",
    "VerifyReport",
    "audit_keyring_from_env",
    "checkpoint",
    "entry_body",
    "entry_hash",
    "entry_json",
    "export_jsonl",
    "keyring_from_env",
    "parse_secret",
    "verify",
]
