"""The ids afk gives runs and requests: a kind prefix and 128 random bits.

The bits are written in lowercase base32 (RFC 4648's alphabet, no padding): 26 characters
instead of the 32 of hex. An id is stored in about fifteen places per paused run (rows,
primary keys, the listing and readiness indexes, the ledger), so six characters fewer is
about a tenth of a paused run's bytes on disk (store schema 10, issue 9). Lowercase, so
that what people type matches by prefix (afk.cli._ids) as hex ids always did; ids made
before (``run_`` or ``req_`` and 32 hex characters) stay valid: nothing parses an id.
"""

from __future__ import annotations

import base64
import secrets

RANDOM_BYTES = 16  # 128 bits, as uuid4().hex carried (122 of them random)


def new_id(prefix: str) -> str:
    """``prefix`` followed by 26 lowercase base32 characters of fresh random bits."""
    text = base64.b32encode(secrets.token_bytes(RANDOM_BYTES)).decode("ascii")
    return prefix + text.rstrip("=").lower()
