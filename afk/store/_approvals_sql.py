"""SQL for approver votes, standing grants and durable timers, shared by both backends.

Same conventions as ``_common``: ``{t}`` is the table prefix, ``?`` the placeholder, and
``{real}`` the float column type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from afk.errors import DuplicateVoteError
from afk.store import _seal as s
from afk.store.store import LogEntry

if TYPE_CHECKING:
    from afk.audit.keys import Keyring
    from afk.store.store import GrantRecord, TimerRecord, VoteRecord

VOTE_COLS = ("request_id", "approver", "kind", "decision", "bound_digest", "at", "mac")
GRANT_COLS = (
    "grant_id",
    "tool_name",
    "scope",
    "scope_value",
    "when_json",
    "until",
    "created_by",
    "created_at",
    "source_request_id",
    "revoked_at",
    "revoked_by",
    "uses",
    "mac",
    "effect",
    "reason",
)
# Store schema 7: what grants rows of older stores lack (NULL reads as an allow grant).
GRANT_COLUMNS = (("effect", "TEXT"), ("reason", "TEXT"))

DDL = (
    """CREATE TABLE IF NOT EXISTS {t}votes (
        request_id TEXT NOT NULL, approver TEXT NOT NULL, kind TEXT NOT NULL,
        decision TEXT NOT NULL, bound_digest TEXT NOT NULL, at {real} NOT NULL, mac TEXT,
        PRIMARY KEY (request_id, approver))""",
    """CREATE TABLE IF NOT EXISTS {t}grants (
        grant_id TEXT PRIMARY KEY, tool_name TEXT NOT NULL, scope TEXT NOT NULL,
        scope_value TEXT NOT NULL, when_json TEXT NOT NULL, until {real} NOT NULL,
        created_by TEXT, created_at {real} NOT NULL, source_request_id TEXT,
        revoked_at {real}, revoked_by TEXT, uses INTEGER NOT NULL DEFAULT 0,
        mac TEXT, effect TEXT, reason TEXT)""",
    """CREATE TABLE IF NOT EXISTS {t}timers (
        request_id TEXT NOT NULL, kind TEXT NOT NULL, due_at {real} NOT NULL,
        fired_at {real}, PRIMARY KEY (request_id, kind))""",
    "CREATE INDEX IF NOT EXISTS timers_due ON {t}timers (fired_at, due_at)",
    # The grants that may cover a call: its tool's, for one of its scopes' values, not
    # revoked (a gated call asks for them; a revoked grant leaves the index).
    "CREATE INDEX IF NOT EXISTS grants_active ON {t}grants (tool_name, scope_value) "
    "WHERE revoked_at IS NULL",
    # The grants listing's order (afk grants list, a page at a time).
    "CREATE INDEX IF NOT EXISTS grants_page ON {t}grants (created_at, grant_id)",
)

_V = ", ".join(VOTE_COLS)
_G = ", ".join(GRANT_COLS)
INSERT_VOTE = f"INSERT INTO {{t}}votes ({_V}) VALUES ({', '.join('?' * len(VOTE_COLS))})"
SELECT_VOTER = "SELECT 1 FROM {t}votes WHERE request_id = ? AND approver = ?"
LIST_VOTES = f"SELECT {_V} FROM {{t}}votes WHERE request_id = ? ORDER BY at, approver"
INSERT_GRANT = (
    f"INSERT INTO {{t}}grants ({_G}) VALUES ({', '.join('?' * len(GRANT_COLS))}) "
    "ON CONFLICT (grant_id) DO NOTHING"
)
LIST_GRANTS = f"SELECT {_G} FROM {{t}}grants ORDER BY created_at, grant_id"
LIST_ACTIVE_GRANTS = (
    f"SELECT {_G} FROM {{t}}grants WHERE revoked_at IS NULL AND until > ? "
    "ORDER BY created_at, grant_id"
)
SELECT_GRANT = f"SELECT {_G} FROM {{t}}grants WHERE grant_id = ?"


def grant_key(grant: GrantRecord) -> tuple[float, str]:
    """The grants listing's sort key."""
    return grant.created_at, grant.grant_id


def grants_page_sql(*, active: bool, after: bool) -> str:
    """One page of grants, oldest first, by the grants_page index: ``active`` (a time
    parameter first) leaves out revoked and expired ones, ``after`` (the cursor's
    created_at and grant_id next) starts past a position; the page size last."""
    where = ["revoked_at IS NULL", "until > ?"] if active else []
    if after:
        where.append("(created_at, grant_id) > (?, ?)")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {_G} FROM {{t}}grants{clause} ORDER BY created_at, grant_id LIMIT ?"


def active_grants_sql(values: int) -> str:
    """The active grants of one tool whose scope value is one of ``values`` (that many
    parameters after the tool name; then the time), by the grants_active index."""
    marks = ", ".join("?" * values)
    return (
        f"SELECT {_G} FROM {{t}}grants WHERE tool_name = ? AND scope_value IN ({marks}) "
        "AND revoked_at IS NULL AND until > ?"
    )


REVOKE_GRANT = (
    "UPDATE {t}grants SET revoked_at = ?, revoked_by = ?, mac = ? "
    "WHERE grant_id = ? AND revoked_at IS NULL"
)
USE_GRANT = (
    "UPDATE {t}grants SET uses = uses + 1 WHERE grant_id = ? AND revoked_at IS NULL AND until > ?"
)
INSERT_TIMER = (
    "INSERT INTO {t}timers (request_id, kind, due_at, fired_at) VALUES (?, ?, ?, NULL) "
    "ON CONFLICT (request_id, kind) DO NOTHING"
)
# Every unfired timer that came due, with its request's status: one whose request is no
# longer pending (decided before its reminder) is marked fired without being sent, so the
# timers_due range scanned below holds only timers still to handle, not history.
DUE_TIMERS = (
    "SELECT m.request_id, m.kind, m.due_at, q.status FROM {t}timers m LEFT JOIN {t}requests q "
    "ON q.request_id = m.request_id WHERE m.fired_at IS NULL AND m.due_at <= ? "
    "ORDER BY m.due_at LIMIT ?"
)
# Whether any timer needs handling (timers_due alone): most passes find none, and must not
# take a write transaction (SQLite's write lock) to learn it.
ANY_DUE_TIMER = "SELECT 1 FROM {t}timers WHERE fired_at IS NULL AND due_at <= ? LIMIT 1"
FIRE_TIMER = (
    "UPDATE {t}timers SET fired_at = ? WHERE request_id = ? AND kind = ? AND fired_at IS NULL"
)


def vote_from_row(row: Sequence[Any]) -> VoteRecord:
    from afk.store._other_records import VoteRecord  # built on first use: see there

    data = dict(zip(VOTE_COLS, row, strict=True))
    data["mac"] = data["mac"] or ""
    return VoteRecord(**data)


def grant_from_row(row: Sequence[Any]) -> GrantRecord:
    from afk.store._other_records import GrantRecord

    data = dict(zip(GRANT_COLS, row, strict=True))
    data["when"] = data.pop("when_json")
    data["mac"] = data["mac"] or ""
    data["effect"] = data["effect"] or "allow"
    return GrantRecord(**data)


def grant_params(grant: GrantRecord) -> tuple[Any, ...]:
    return tuple(getattr(grant, "when" if c == "when_json" else c) for c in GRANT_COLS)


def vote_params(vote: VoteRecord) -> tuple[Any, ...]:
    return tuple(getattr(vote, c) for c in VOTE_COLS)


def duplicate_vote(vote: VoteRecord) -> DuplicateVoteError:
    return DuplicateVoteError(
        f"{vote.approver!r} already voted on request {vote.request_id}; "
        "a quorum needs distinct approvers",
        request_id=vote.request_id,
    )


def counted(
    keys: Keyring, rows: Sequence[Sequence[Any]], run_id: str
) -> tuple[list[VoteRecord], list[LogEntry]]:
    """The LIST_VOTES ``rows`` that verify, and a tamper entry for each that does not: a
    vote row inserted behind afk's back never counts towards a quorum."""
    votes = [vote_from_row(r) for r in rows]
    forged = [v for v in votes if not s.record_ok(keys, v)]
    good = [v for v in votes if s.record_ok(keys, v)]
    return good, [s.tamper_log(v, "count a vote", run_id) for v in forged]


def revoked(
    keys: Keyring, row: Sequence[Any] | None, *, by: str | None, now: float
) -> tuple[GrantRecord | None, list[LogEntry], bool]:
    """From the grant's row (read in the revoking transaction): the grant as it will be,
    tamper entries to log, and whether REVOKE_GRANT must run (not when already revoked: the
    first revocation stands)."""
    if row is None:
        return None, [], False
    current = grant_from_row(row)
    if current.revoked_at is not None:
        return current, [], False
    new = dataclasses.replace(current, revoked_at=now, revoked_by=by)
    new, extra = s.resealed(keys, current, new, "re-sign a tampered grant")
    return new, extra, True


def due_timer(row: Sequence[Any]) -> TimerRecord:
    from afk.store._other_records import TimerRecord

    return TimerRecord(request_id=row[0], kind=row[1], due_at=row[2])
