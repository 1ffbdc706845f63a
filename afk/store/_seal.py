"""Row MACs: the one definition of what a stored record's ``mac`` covers, and its check.

Both backends seal every row they write in runs, requests, votes, grants, executions and
api_tokens with ``keys.mac("<table>", {field: value, ...})`` over the fields below; the run,
the grants, the durable layer and the console's token check :func:`record_ok` before they
trust a row. The table name is the MAC's purpose, so a row cannot pass for a row of another
table, and the row's id is among the fields, so it cannot pass for another row of its own
table.

Left out on purpose: a run's lease columns (taken and renewed by any worker, and trusted
for nothing but "who is working on it"), and a grant's ``uses`` counter (counting a use must
not need a read and a re-sign). Floats are covered as floats, so a value written as ``5``
and read back as ``5.0`` still verifies.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from afk.audit.keys import Keyring
from afk.canonical import sha256_hex
from afk.errors import TamperedRecordError
from afk.store.store import LogEntry

if TYPE_CHECKING:
    from afk.store.store import (
        ExecutionRecord,
        GrantRecord,
        IdempotentAnswer,
        RequestRecord,
        RunRecord,
        ThreadTurnRecord,
        TokenRecord,
        VoteRecord,
    )

    Sealable = (
        RunRecord
        | RequestRecord
        | ExecutionRecord
        | VoteRecord
        | GrantRecord
        | TokenRecord
        | IdempotentAnswer
        | ThreadTurnRecord
    )

Kind = Literal["text", "int", "real"]
R = TypeVar(
    "R",
    "RunRecord", "RequestRecord", "ExecutionRecord", "VoteRecord", "GrantRecord", "TokenRecord",
    "IdempotentAnswer",
    "ThreadTurnRecord",
)  # fmt: skip

_T: Kind = "text"
_R: Kind = "real"
# By the record class's name: the records deciding does not use are built on first use
# (afk.store._other_records), and sealing a decision must not build them. COVERED (below)
# is the same by class.
_COVERED: dict[str, tuple[str, tuple[tuple[str, Kind], ...]]] = {
    "RunRecord": (
        "runs",
        (
            ("run_id", _T), ("agent_name", _T), ("status", _T), ("snapshot", _T),
            ("schema_version", "int"), ("created_at", _R), ("updated_at", _R),
            ("thread_id", _T), ("requested_by", _T),
        ),
    ),
    "RequestRecord": (
        "requests",
        (
            ("request_id", _T), ("run_id", _T), ("kind", _T), ("request", _T),
            ("args_digest", _T), ("status", _T), ("created_at", _R), ("expires_at", _R),
            ("tool_name", _T), ("decision", _T), ("decided_by", _T), ("approver", _T),
            ("decided_at", _R), ("bound_digest", _T),
        ),
    ),
    "ExecutionRecord": (
        "executions",
        (
            ("key", _T), ("run_id", _T), ("tool_call_id", _T), ("args_digest", _T),
            ("status", _T), ("started_at", _R), ("result", _T), ("finished_at", _R),
        ),
    ),
    "VoteRecord": (
        "votes",
        (
            ("request_id", _T), ("approver", _T), ("kind", _T), ("decision", _T),
            ("bound_digest", _T), ("at", _R),
        ),
    ),
    "GrantRecord": (
        "grants",
        (
            ("grant_id", _T), ("tool_name", _T), ("scope", _T), ("scope_value", _T),
            ("when", _T), ("until", _R), ("created_by", _T), ("created_at", _R),
            ("source_request_id", _T), ("revoked_at", _R), ("revoked_by", _T),
            ("effect", _T), ("reason", _T),
        ),
    ),
    "TokenRecord": (
        "api_tokens",
        (
            ("token_id", _T), ("principal_id", _T), ("secret_hash", _T), ("created_at", _R),
            ("expires_at", _R), ("created_by", _T), ("revoked_at", _R), ("revoked_by", _T),
        ),
    ),
    "IdempotentAnswer": (
        "api_answers",
        (("principal_id", _T), ("key", _T), ("request_id", _T), ("status", "int"),
         ("body", _T), ("at", _R)),
    ),
    "ThreadTurnRecord": (
        "thread_turns",
        (("thread_id", _T), ("turn", "int"), ("run_id", _T), ("messages", _T), ("at", _R)),
    ),
}  # fmt: skip


def _value(value: Any, kind: Kind) -> Any:
    if value is None:
        return None
    if kind == "real":
        return float(value)
    if kind == "int":
        return int(value)
    return value


# Fields added to a sealed table after rows were signed: covered only when they differ from
# what every older row means, so those rows still verify and a changed value does not.
_COVERED_UNLESS: dict[str, dict[str, Any]] = {
    "GrantRecord": {"effect": "allow", "reason": None},
}
# How the ledger names a row: its primary key's fields, joined by "/".
_ROW_KEY: dict[str, tuple[str, ...]] = {
    "RunRecord": ("run_id",),
    "RequestRecord": ("request_id",),
    "ExecutionRecord": ("key",),
    "VoteRecord": ("request_id", "approver"),
    "GrantRecord": ("grant_id",),
    "TokenRecord": ("token_id",),
    "IdempotentAnswer": ("principal_id", "key"),
    "ThreadTurnRecord": ("thread_id", "turn"),
}


def __getattr__(name: str) -> Any:
    """``COVERED``: what each record class's MAC covers, by class (built on first use)."""
    if name != "COVERED":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from afk.store import store

    return {getattr(store, kind): spec for kind, spec in _COVERED.items()}


def covered(record: Sealable) -> tuple[str, dict[str, Any]]:
    """The record's table and the values its MAC covers."""
    kind = type(record).__name__
    table, fields = _COVERED[kind]
    unless = _COVERED_UNLESS.get(kind)
    values = {name: _value(getattr(record, name), kind) for name, kind in fields}
    if unless is not None:
        for name, legacy in unless.items():
            if values[name] == legacy:
                del values[name]
    return table, values


def row_id(record: Sealable) -> str:
    """How the ledger names a row: its primary key."""
    return "/".join(str(getattr(record, name)) for name in _ROW_KEY[type(record).__name__])


def table_of(record: Sealable) -> str:
    return _COVERED[type(record).__name__][0]


def mac_of(keys: Keyring, record: Sealable) -> str:
    table, values = covered(record)
    return keys.mac(table, values)


def sealed(keys: Keyring, record: R) -> R:
    """``record`` with its ``mac`` computed (whatever it held is replaced)."""
    return dataclasses.replace(record, mac=mac_of(keys, record))


def record_ok(keys: Keyring, record: Sealable) -> bool:
    """Whether ``record`` is exactly what a store holding ``keys`` wrote (a row without a MAC,
    or one whose covered fields changed since, is not)."""
    table, values = covered(record)
    return keys.verify(table, values, record.mac)


# -- refusing what does not verify --------------------------------------------------------
def tamper_log(record: Sealable, where: str, run_id: str | None = None) -> LogEntry:
    """The ledger entry for a row that does not verify: which table, which row, and what was
    refused because of it."""
    table = table_of(record)
    run = run_id if run_id is not None else getattr(record, "run_id", "")
    request_id = getattr(record, "request_id", None) or getattr(record, "key", None)
    # Imported here: afk.audit.entries sits above the store (it needs LogEntry from it).
    from afk.audit.entries import TamperDetected, to_log

    entry = TamperDetected(
        run_id=run or "",
        request_id=request_id,
        actor="afk",
        table=table,
        row_id=row_id(record),
        refused=where,
        at=time.time(),
    )
    return to_log(entry)


def tampered(record: Sealable, where: str) -> TamperedRecordError:
    table, ident = table_of(record), row_id(record)
    return TamperedRecordError(
        f"refused to {where}: the stored {table} row {ident!r} does not verify under this "
        "store's key (it was changed outside afk, or written with another key)",
        table=table,
        record_id=ident,
    )


def resealed(keys: Keyring, current: R, new: R, where: str) -> tuple[R, list[LogEntry]]:
    """An update of ``current`` to ``new``: sealed when ``current`` verifies; otherwise it
    keeps ``current``'s MAC (so the row stays unverifiable: an update must not launder a
    forged row) and comes with a ``tamper_detected`` entry for the ledger."""
    if record_ok(keys, current):
        return sealed(keys, new), []
    return dataclasses.replace(new, mac=current.mac), [tamper_log(current, where)]


# -- migration to store schema v3 ----------------------------------------------------------
def rekeyed_request(keys: Keyring, record: RequestRecord) -> RequestRecord:
    """A v2 request row with its unkeyed SHA-256 digests replaced by keyed ones, wherever the
    old digest is the digest of what it claims to cover: the request's arguments; for the
    bound digest, those, the approver's edit, or the arguments with the human's input filled
    in. A digest that matches none is left as it was: it then fails every check, the
    fail-closed outcome for a row that was already inconsistent."""
    request, decision = _object(record.request), _object(record.decision)
    tool_args = request.get("tool_args")
    candidates = [tool_args]
    if isinstance(decision.get("updated_tool_args"), dict):
        candidates.append(decision["updated_tool_args"])
    target = request.get("input_target_arg")
    if isinstance(target, str) and isinstance(tool_args, dict) and "value" in decision:
        candidates.append({**tool_args, target: decision["value"]})

    def rekey(old: str | None) -> str | None:
        match = next((a for a in candidates if old is not None and old == sha256_hex(a)), None)
        return keys.digest(match) if match is not None else old

    return dataclasses.replace(
        record,
        args_digest=rekey(record.args_digest) or record.args_digest,
        bound_digest=rekey(record.bound_digest),
    )


def _object(text: str | None) -> dict[str, Any]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
