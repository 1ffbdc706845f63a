"""Ids by prefix, shared by both backends: what lets people type ``afk approvals approve 3f2a``.

The candidates are one range query on the table's primary key (``id >= prefix AND id <
next_prefix(prefix)``), which stops after ``limit`` rows however many are stored. That range
is exactly the ids starting with the prefix when the key's collation orders by code point:
always on SQLite (TEXT compares bytewise), on Postgres for C-like database collations. Under
any other collation the comparison is made in code-point order explicitly (``COLLATE "C"``):
still correct, though the index cannot serve it.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from afk.errors import ConfigurationError

IdKind = Literal["run", "request", "grant"]
# Where each kind of id is the primary key.
KEYS: dict[str, tuple[str, str]] = {
    "run": ("runs", "run_id"),
    "request": ("requests", "request_id"),
    "grant": ("grants", "grant_id"),
}
PG_BYTE_ORDER = ("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic")
PG_COLLATION = "SELECT datcollate FROM pg_database WHERE datname = current_database()"


def key_of(kind: object) -> tuple[str, str]:
    """``kind``'s (table, key column), or a ConfigurationError naming the accepted kinds."""
    found = KEYS.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise ConfigurationError(f"kind must be one of {', '.join(map(repr, KEYS))}, got {kind!r}")
    return found


def prefix_sql(
    table: str, column: str, prefix: str, limit: int, *, byte_order: bool = True
) -> tuple[str, list[Any]]:
    """The range query (``_common`` conventions) for ids in ``table`` starting with
    ``prefix``, in code-point order, at most ``limit``. ``byte_order``: the key's collation
    orders by code point (see the module docstring)."""
    if not isinstance(prefix, str):
        raise ConfigurationError(f"prefix must be a str, got {prefix!r}")
    key = column if byte_order else f'{column} COLLATE "C"'
    upper = next_prefix(prefix)
    where = f"{key} >= ?" + ("" if upper is None else f" AND {key} < ?")
    args: list[Any] = [prefix, *([] if upper is None else [upper]), limit]
    return f"SELECT {column} FROM {{t}}{table} WHERE {where} ORDER BY {key} LIMIT ?", args


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


def byte_ordered(collation_row: Any) -> bool:
    """Whether the PG_COLLATION row names a collation that orders by code point."""
    return bool(collation_row) and collation_row[0] in PG_BYTE_ORDER
