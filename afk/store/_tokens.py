"""API tokens, the HTTP API's idempotent answers and the web inbox's ended sessions: their
tables (store schema 7; ended sessions 10), SQL, procedures (see :mod:`afk.store._procs`)
and the tokens' secret format.

A token's secret is ``afk_<token id>_<43 characters>``: 32 bytes from ``secrets``, URL-safe
base64. Only its SHA-256 is stored. A plain hash is enough, no salt and no slow KDF: those
defend guessable passwords, and 256 random bits cannot be guessed or looked up in a table;
what protects against a leaked database is that it holds no secret. The token id inside the
secret makes the lookup one primary-key read (then a constant-time compare of the hashes),
and lets secret scanners and people recognize a leaked afk token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from afk.store import _seal as s
from afk.store._procs import FOR_UPDATE, Proc, Q, insert_log

if TYPE_CHECKING:
    from afk.audit.keys import Keyring
    from afk.store.store import IdempotentAnswer, TokenRecord

# -- store schema 7 (API tokens, idempotent answers) ---------------------------------------
# Kept apart from whatever else schema 7 adds, so the blocks merge without touching.
TOKEN_COLS = (
    "token_id",
    "principal_id",
    "secret_hash",
    "created_at",
    "expires_at",
    "created_by",
    "revoked_at",
    "revoked_by",
    "mac",
)
ANSWER_COLS = ("principal_id", "idem_key", "request_id", "status", "body", "at", "mac")
DDL = (
    """CREATE TABLE IF NOT EXISTS {t}api_tokens (
        token_id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, secret_hash TEXT NOT NULL,
        created_at {real} NOT NULL, expires_at {real}, created_by TEXT, revoked_at {real},
        revoked_by TEXT, mac TEXT)""",
    # (created_at, token_id): `afk tokens list` reads the newest page without a sort.
    "CREATE INDEX IF NOT EXISTS api_tokens_created ON {t}api_tokens (created_at, token_id)",
    """CREATE TABLE IF NOT EXISTS {t}api_answers (
        principal_id TEXT NOT NULL, idem_key TEXT NOT NULL, request_id TEXT NOT NULL,
        status INTEGER NOT NULL, body TEXT NOT NULL, at {real} NOT NULL, mac TEXT,
        PRIMARY KEY (principal_id, idem_key))""",
    # Sessions logged out before their cookie expires (afk.console._sessions): kept until
    # then, so the table holds the last few hours' logouts, not every session ever.
    """CREATE TABLE IF NOT EXISTS {t}ended_sessions (
        session_id TEXT PRIMARY KEY, until {real} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ended_sessions_until ON {t}ended_sessions (until)",
)

_T = ", ".join(TOKEN_COLS)
_A = ", ".join(ANSWER_COLS)
INSERT_TOKEN = f"INSERT INTO {{t}}api_tokens ({_T}) VALUES ({', '.join('?' * len(TOKEN_COLS))})"
SELECT_TOKEN = f"SELECT {_T} FROM {{t}}api_tokens WHERE token_id = ?"
LIST_TOKENS = f"SELECT {_T} FROM {{t}}api_tokens ORDER BY created_at DESC, token_id DESC LIMIT ?"
REVOKE_TOKEN = (
    "UPDATE {t}api_tokens SET revoked_at = ?, revoked_by = ?, mac = ? "
    "WHERE token_id = ? AND revoked_at IS NULL"
)
INSERT_ANSWER = (
    f"INSERT INTO {{t}}api_answers ({_A}) VALUES ({', '.join('?' * len(ANSWER_COLS))}) "
    "ON CONFLICT (principal_id, idem_key) DO NOTHING"
)
SELECT_ANSWER = f"SELECT {_A} FROM {{t}}api_answers WHERE principal_id = ? AND idem_key = ?"
END_SESSION = (
    "INSERT INTO {t}ended_sessions (session_id, until) VALUES (?, ?) "
    "ON CONFLICT (session_id) DO NOTHING"
)
PRUNE_ENDED = "DELETE FROM {t}ended_sessions WHERE until < ?"
SELECT_ENDED = "SELECT 1 FROM {t}ended_sessions WHERE session_id = ?"


def end_session(session_id: str, until: float, now: float) -> Proc[None]:
    """Record that ``session_id`` was logged out (its cookie good until ``until``), and
    forget the ended sessions whose cookies have expired anyway."""
    yield Q(PRUNE_ENDED, (now,))
    yield Q(END_SESSION, (session_id, until))


def session_ended(session_id: str) -> Proc[bool]:
    """Whether ``session_id`` was logged out."""
    row = yield Q(SELECT_ENDED, (session_id,), fetch="one")
    return row is not None


def token_from_row(row: Sequence[Any]) -> TokenRecord:
    from afk.store._other_records import TokenRecord  # built on first use: see there

    data = dict(zip(TOKEN_COLS, row, strict=True))
    data["mac"] = data["mac"] or ""
    return TokenRecord(**data)


def token_params(token: TokenRecord) -> tuple[Any, ...]:
    return tuple(getattr(token, c) for c in TOKEN_COLS)


def answer_from_row(row: Sequence[Any]) -> IdempotentAnswer:
    from afk.store._other_records import IdempotentAnswer

    data = dict(zip(ANSWER_COLS, row, strict=True))
    data["key"] = data.pop("idem_key")
    data["status"] = int(data["status"])
    data["mac"] = data["mac"] or ""
    return IdempotentAnswer(**data)


def answer_params(answer: IdempotentAnswer) -> tuple[Any, ...]:
    return tuple(getattr(answer, "key" if c == "idem_key" else c) for c in ANSWER_COLS)


# -- procedures ----------------------------------------------------------------------------
def revoke_token(
    keys: Keyring, token_id: str, by: str | None, now: float
) -> Proc[TokenRecord | None]:
    """The token as revoked (the first revocation stands), or None when unknown. A row that
    does not verify keeps its MAC (it stays unusable) and its tamper entry is logged."""
    row = yield Q(SELECT_TOKEN, (token_id,), fetch="one", lock=FOR_UPDATE)
    if row is None:
        return None
    current = token_from_row(row)
    if current.revoked_at is not None:
        return current
    new = dataclasses.replace(current, revoked_at=now, revoked_by=by)
    new, extra = s.resealed(keys, current, new, "re-sign a tampered API token")
    yield Q(REVOKE_TOKEN, (now, by, new.mac, token_id))
    yield from insert_log(keys, extra)
    return new


def save_answer(answer: IdempotentAnswer) -> Proc[IdempotentAnswer]:
    """Keep ``answer`` unless its key holds one; read back the one kept."""
    yield Q(INSERT_ANSWER, answer_params(answer))
    row = yield Q(SELECT_ANSWER, (answer.principal_id, answer.key), fetch="one")
    return answer_from_row(row) if row is not None else answer


# -- secrets -------------------------------------------------------------------------------
_SECRET = re.compile(r"afk_(tok_[0-9a-f]{20})_[A-Za-z0-9_-]{43}")


def new_token_id() -> str:
    return "tok_" + secrets.token_hex(10)


def new_secret(token_id: str) -> str:
    """A fresh secret for ``token_id`` (shown once, never stored)."""
    return f"afk_{token_id}_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    """What the store keeps of a secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def token_id_of(secret: str) -> str | None:
    """The token id a well-formed secret names, or None for anything else."""
    found = _SECRET.fullmatch(secret)
    return found.group(1) if found else None


def secret_matches(secret: str, token: TokenRecord) -> bool:
    """Whether ``secret`` is ``token``'s (constant time over the hashes)."""
    return hmac.compare_digest(secret_hash(secret), token.secret_hash)
