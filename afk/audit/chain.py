"""The ledger's keyed chain and signed checkpoints, in pure Python (no database).

The one definition of an entry's hash, used by both store backends when they append and by
the verifier when it re-computes::

    hash = keys.mac("ledger", {
        "id": <int>, "kind": <str>, "run_id": <str>, "request_id": <str|null>,
        "actor": <str|null>, "payload": <the stored JSON text, as a string>,
        "at": <float>, "prev_hash": <the previous entry's hash; GENESIS for the first>,
    })

that is ``"<key_id>:" + hex(HMAC-SHA256(secret, canonical_json(["ledger", body])))`` (see
:mod:`afk.audit.keys`), where ``canonical_json`` sorts keys, uses ``,``/``:`` without spaces,
keeps non-ASCII text as UTF-8, and writes floats the way Python's ``repr`` does. Because it
is a MAC, nobody without the key can recompute the chain after editing or cutting it. A
checkpoint's ``mac`` is ``keys.mac("checkpoint", {"head_id", "head_hash", "entries", "at"})``.
Both are stable: an exported ledger can be re-verified by anything that holds the key and
follows these rules.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from afk.audit.keys import Keyring, SecretKey, key_from_env

GENESIS = "0" * 64  # the prev_hash of the first entry
# An explicit checkpoint key, overriding the store's keyring for checkpoints only (kept so
# deployments that already sign with it go on working).
KEY_ENV = "AFK_AUDIT_KEY"


def entry_body(
    id: int,
    kind: str,
    run_id: str,
    request_id: str | None,
    actor: str | None,
    payload: str,
    at: float,
    prev_hash: str,
) -> dict[str, Any]:
    """What an entry's MAC covers (arguments in the order of the ``log`` table's columns)."""
    return {
        "id": int(id),
        "kind": kind,
        "run_id": run_id,
        "request_id": request_id,
        "actor": actor,
        "payload": payload,
        "at": float(at),
        "prev_hash": prev_hash,
    }


def entry_hash(keys: Keyring, *fields: Any) -> str:
    """The hash of one ledger entry: ``keys.mac("ledger", entry_body(*fields))``."""
    return keys.mac("ledger", entry_body(*fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A signed statement that the ledger had ``entries`` entries ending with ``head_id`` /
    ``head_hash`` at time ``at``. ``id`` is assigned by the store."""

    head_id: int
    head_hash: str
    entries: int
    at: float
    mac: str = ""
    id: int = 0

    def body(self) -> dict[str, Any]:
        """The signed fields, as the MAC covers them (``mac`` and the store's ``id`` are not part of
        it)."""
        return {
            "head_id": int(self.head_id),
            "head_hash": self.head_hash,
            "entries": int(self.entries),
            "at": float(self.at),
        }

    def signed(self, keys: Keyring) -> Checkpoint:
        """A copy with ``mac`` set by the current key of ``keys``."""
        return replace(self, mac=keys.mac("checkpoint", self.body()))

    def signature_ok(self, keys: Keyring) -> bool:
        """Whether ``mac`` verifies with ``keys`` (the current key or an older one): a forged or
        altered checkpoint does not."""
        return keys.verify("checkpoint", self.body(), self.mac)


def audit_keyring_from_env(name: str = KEY_ENV) -> Keyring | None:
    """A keyring of just the checkpoint key in ``name`` (hex of >= 32 bytes, or text of >= 32
    characters), or None when the variable is unset or blank."""
    key: SecretKey | None = key_from_env(name)
    return Keyring(key) if key is not None else None


__all__ = [
    "GENESIS",
    "KEY_ENV",
    "Checkpoint",
    "audit_keyring_from_env",
    "entry_body",
    "entry_hash",
]
