"""Ids as people read and type them: short in narrow tables, any unique prefix accepted back.

``afk approvals approve 3f2a`` names the one request whose id starts with ``3f2a`` or with
``req_3f2a``; an ambiguous prefix is refused naming the candidates, since deciding the wrong
request is worse than asking for two more characters. A full id that exists always wins,
even when it is also the prefix of another id.

The candidates come from one range query on the table's primary key
(``id >= prefix AND id < next(prefix)``): an index range scan that stops after a handful of
rows, however many are stored. The store's Protocol has no such listing (its listings are
ordered by time, not id), so this asks the backend's own query method for it; a store that
gains an ``ids_with_prefix(table, prefix, limit)`` method is used through that instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from afk.approvals.display import escape
from afk.errors import ConfigurationError
from afk.store import RunStore

MIN_PREFIX = 4
SHORT = 8
_SHOWN = 5  # candidates an ambiguity error names
_PG_BYTE_ORDER = ("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic")


class AmbiguousIdError(ConfigurationError):
    """An id prefix that more than one record's id starts with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IdKind:
    """Where one kind of id lives, and the prefix afk gives the ids it makes."""

    what: str  # for messages: "request"
    table: str
    column: str
    prefix: str  # "req_": typed prefixes may leave it out, short ids do


REQUEST = IdKind(what="request", table="requests", column="request_id", prefix="req_")
RUN = IdKind(what="run", table="runs", column="run_id", prefix="run_")
GRANT = IdKind(what="grant", table="grants", column="grant_id", prefix="grant_")


# -- reading ---------------------------------------------------------------------------------
def short_ids(ids: Sequence[str], kind: IdKind) -> dict[str, str]:
    """Each id as a narrow table shows it: without afk's own prefix, its first ``SHORT``
    characters, longer where two ids on the same table would otherwise look alike."""
    stems = {i: i.removeprefix(kind.prefix) for i in ids}
    shown: dict[str, str] = {}
    for i, stem in stems.items():
        n = SHORT
        while n < len(stem) and any(
            o != i and other.startswith(stem[:n]) for o, other in stems.items()
        ):
            n += 1
        shown[i] = stem[:n]
    return shown


def shown_id(record_id: str, kind: IdKind, *, wide: bool) -> str:
    return record_id if wide else short_ids([record_id], kind)[record_id]


# -- typing ----------------------------------------------------------------------------------
async def resolve(store: RunStore, kind: IdKind, typed: str) -> str | None:
    """The full id ``typed`` names: itself when it exists, else the one id that starts with
    it (or with ``kind.prefix`` and it); None when nothing does, and for prefixes shorter
    than MIN_PREFIX characters (after ``kind.prefix``). Raises AmbiguousIdError for a prefix
    several ids start with."""
    if await _exists(store, kind, typed):
        return typed
    if len(typed.removeprefix(kind.prefix)) < MIN_PREFIX:
        return None  # too short to stand for anything but itself
    found = await ids_with_prefix(store, kind, typed)
    if not typed.startswith(kind.prefix):
        found = sorted({*found, *await ids_with_prefix(store, kind, kind.prefix + typed)})
    if len(found) > 1:
        names = ", ".join(escape(f) for f in found[:_SHOWN])
        more = " and more" if len(found) > _SHOWN else ""
        raise AmbiguousIdError(
            f"{kind.what} id prefix {escape(repr(typed))} is ambiguous: it starts {names}"
            f"{more}; give more characters"
        )
    return found[0] if found else None


async def _exists(store: RunStore, kind: IdKind, record_id: str) -> bool:
    if kind is REQUEST:
        return await store.get_request(record_id) is not None
    if kind is RUN:
        return await store.load_run(record_id) is not None
    return record_id in await ids_with_prefix(store, kind, record_id)


async def ids_with_prefix(store: RunStore, kind: IdKind, prefix: str) -> list[str]:
    """Up to ``_SHOWN + 1`` ids of ``kind`` starting with ``prefix``, in id order."""
    limit = _SHOWN + 1
    method = getattr(store, "ids_with_prefix", None)
    if callable(method):
        found: list[str] = await method(kind.table, prefix, limit=limit)
        return found
    query = getattr(store, "_all", None)
    postgres = _is_postgres(store)
    if query is None or not (postgres or type(store).__module__ == "afk.store.sqlite"):
        return []  # a store of another kind: exact ids only
    sql, args = prefix_query(kind, prefix, limit, byte_order=await _byte_ordered(store))
    # The Postgres store fills in its schema for {t}; SQLite's tables have no prefix.
    rows = await query(sql if postgres else sql.replace("{t}", ""), args)
    return [row[0] for row in rows if row[0].startswith(prefix)]


def _is_postgres(store: RunStore) -> bool:
    return type(store).__module__ == "afk.store.postgres"


def prefix_query(
    kind: IdKind, prefix: str, limit: int, *, byte_order: bool = True
) -> tuple[str, list[Any]]:
    """The range query (``{t}`` is the table prefix, ``?`` the placeholders) for ids that
    start with ``prefix``. ``byte_order``: the key's collation orders by code point, so the
    range is exactly the ids with that prefix and the primary key's index serves it.
    Otherwise the comparison is made in code-point order explicitly (``COLLATE "C"``):
    correct, though the index cannot serve it."""
    col = kind.column
    key = col if byte_order else f'{col} COLLATE "C"'
    upper = next_prefix(prefix)
    where = f"{key} >= ?" + ("" if upper is None else f" AND {key} < ?")
    args: list[Any] = [prefix, *([] if upper is None else [upper]), limit]
    return f"SELECT {col} FROM {{t}}{kind.table} WHERE {where} ORDER BY {key} LIMIT ?", args


def next_prefix(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (code-point
    order), or None when there is none (the prefix is all U+10FFFF)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are no text: skip past them
            code = 0xE000
        if code <= sys.maxunicode:
            return "".join(chars) + chr(code)
    return None


async def _byte_ordered(store: RunStore) -> bool:
    """SQLite compares TEXT bytewise (code-point order). Postgres compares by the
    database's collation, which orders by code point only for C-like ones."""
    if not _is_postgres(store):
        return True
    rows = await store._all(  # type: ignore[attr-defined]
        "SELECT datcollate FROM pg_database WHERE datname = current_database()", []
    )
    return bool(rows) and rows[0][0] in _PG_BYTE_ORDER
