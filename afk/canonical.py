"""The one canonical JSON of afk: what is hashed, signed, stored and compared.

Sorted keys, no spaces, non-ASCII text kept as UTF-8. Every digest, MAC and ledger hash is
computed over this text, so two processes (or an outside verifier) agree byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """The one canonical text of JSON data: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
