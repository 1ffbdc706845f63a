"""The ledger's hash chain and signed checkpoints, in pure Python (no database).

The one definition of an entry's hash, used by both store backends when they append and by
the verifier when it re-computes::

    hash = sha256_hex(canonical_json({
        "id": <int>, "kind": <str>, "run_id": <str>, "request_id": <str|null>,
        "actor": <str|null>, "payload": <the stored JSON text, as a string>,
        "at": <float>, "prev_hash": <the previous entry's hash; GENESIS for the first>,
    }))

where ``canonical_json`` sorts keys, uses ``,``/``:`` without spaces, keeps non-ASCII text as
UTF-8, and writes floats the way Python's ``repr`` does. A checkpoint's ``mac`` is
HMAC-SHA256 (hex) over the canonical JSON of ``{"head_id", "head_hash", "entries", "at"}``.
Both are stable: an exported ledger can be re-verified by anything that follows these rules.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, replace

from afk.canonical import canonical_bytes

GENESIS = "0" * 64  # the prev_hash of the first entry
KEY_ENV = "AFK_AUDIT_KEY"
# A key written as hex: an even number of hex digits, at least 128 bits' worth.
_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2}){16,}")


def entry_hash(
    id: int,
    kind: str,
    run_id: str,
    request_id: str | None,
    actor: str | None,
    payload: str,
    at: float,
    prev_hash: str,
) -> str:
    """The hash of one ledger entry (arguments in the order of the ``log`` table's columns)."""
    body = {
        "id": int(id),
        "kind": kind,
        "run_id": run_id,
        "request_id": request_id,
        "actor": actor,
        "payload": payload,
        "at": float(at),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


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

    def signed(self, key: bytes) -> Checkpoint:
        return replace(self, mac=checkpoint_mac(key, self))

    def signature_ok(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, checkpoint_mac(key, self))


def checkpoint_mac(key: bytes, checkpoint: Checkpoint) -> str:
    body = {
        "head_id": int(checkpoint.head_id),
        "head_hash": checkpoint.head_hash,
        "entries": int(checkpoint.entries),
        "at": float(checkpoint.at),
    }
    return hmac.new(key, canonical_bytes(body), hashlib.sha256).hexdigest()


def parse_key(text: str) -> bytes:
    """A checkpoint key from text: hex when it is only hex digits (at least 32, an even
    number), otherwise the text's UTF-8 bytes."""
    value = text.strip()
    return bytes.fromhex(value) if _HEX_KEY.fullmatch(value) else value.encode("utf-8")


def key_from_env(name: str = KEY_ENV) -> bytes | None:
    """The key in environment variable ``name``, or None when it is unset or empty."""
    text = os.environ.get(name, "").strip()
    return parse_key(text) if text else None
