"""What setup creates, how it tells that there is nothing to create (is_current), and the
store schema migrations, shared by both backends (the v3 one, sealing a v1/v2 store's rows,
in afk.store._seal_migration: only such a store loads it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from afk.audit.keys import Keyring
from afk.store import _approvals_sql as a
from afk.store import _common as c
from afk.store import _event_batches as eb
from afk.store import _links as lk
from afk.store import _listing as ls
from afk.store import _packed as pk
from afk.store import _paging as p
from afk.store import _ready as r
from afk.store import _threads as th
from afk.store import _tokens as tk
from afk.store import _tool_schemas as ts
from afk.store._procs import Proc, Q

Rows = Sequence[Sequence[Any]]
SEALED_TABLES = ("runs", "requests", "executions", "votes", "grants")
COUNT_CHECKPOINTS = "SELECT count(*) FROM {t}ledger_checkpoints"
# What setup creates (IF NOT EXISTS), before the migrations and after them. A store of an
# older schema gets the newer tables here too (store schema 7: tk.DDL, the API's tokens;
# th.DDL, conversation threads; lk.DDL, the notification channels' cursors and links).
TABLES = (*c.DDL[1:], *a.DDL, *p.INDEXES, *tk.DDL, *th.DDL, *lk.DDL)
# Store schema 5: indexes of stores up to 4 whose columns lead a paging index, which
# answers every query they did.
# Store schema 8: requests_page_run, whose listing requests_page_run_status serves.
DROPPED_INDEXES = (
    "runs_status_updated",
    "requests_status_created",
    "requests_run",
    "requests_page_run",
)
# Store schema 6: columns older requests tables lack, added before any migration reads
# requests (the v3 one reads them as every reader does, schema put back).
# Store schema 7: a grant's effect and reason (deny grants).
ADDED_COLUMNS = (
    *(("requests", name, kind) for name, kind in ts.COLUMNS),
    *(("grants", name, kind) for name, kind in a.GRANT_COLUMNS),
    *(("requests", name, kind) for name, kind in ls.COLUMNS),
)
MIGRATION_PAGE = 1000
# Store schema 9: the listing's indexes name columns an older store gains in ADDED_COLUMNS.
AFTER_MIGRATIONS = (
    *r.INDEXES,
    *ls.INDEXES,
    *(f"DROP INDEX IF EXISTS {{t}}{name}" for name in DROPPED_INDEXES),
)
_NAMED = re.compile(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (?:\{t\})?(\w+)")
EXPECTED = frozenset(_NAMED.findall("\n".join((c.DDL[0], *TABLES, *AFTER_MIGRATIONS))))
SQLITE_OBJECTS = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
SQLITE_TABLE_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"
POSTGRES_OBJECTS = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s"
)


def is_current(version: str | None, names: Iterable[str]) -> bool:
    """Whether a store at ``version`` holding the tables and indexes ``names`` already has
    this afk's schema: then setup runs no DDL at all. Even CREATE INDEX IF NOT EXISTS takes
    a SHARE lock on its table in Postgres before it looks, which waits for every writer, and
    a process starting up beside running ones (or a hundred runs each setting up) deadlocks
    with a writer that holds one table and wants the other."""
    found = set(names)
    return version == str(c.STORE_SCHEMA_VERSION) and found >= EXPECTED and not found & ROWID_KEYS


# -- store schema 6 ------------------------------------------------------------------------
def needs_compact_migration(found: str | None) -> bool:
    """A store made before events were batched and tool schemas stored once (< 6)."""
    return found is not None and int(found) < 6


def compact(keys: Keyring, names: Iterable[str]) -> Proc[None]:
    """v5 → v6, in setup's transaction: the old events table's rows as batches (then the
    table dropped), and every inline tool schema moved to tool_schemas. A page at a time,
    in key order. Row MACs are untouched: they cover the request text as it reads back."""
    if "events" in set(names):  # absent from stores that never had it
        key: tuple[str, int] = ("", -1)
        while rows := (yield Q(eb.OLD_EVENTS_PAGE, (*key, MIGRATION_PAGE), fetch="all")):
            yield Q(eb.INSERT, eb.migrated_rows(rows), many=True)
            key = (rows[-1][0], int(rows[-1][1]))
        yield Q(eb.DROP_OLD_EVENTS)
    after = ""
    while rows := (yield Q(ts.INLINE_PAGE, (after, MIGRATION_PAGE), fetch="all")):
        updates, schemas = ts.moved(keys, rows)
        if schemas:
            yield Q(ts.INSERT, list(schemas.items()), many=True)
        if updates:
            yield Q(ts.MOVE, updates, many=True)
        after = rows[-1][0]


# -- store schema 8 ------------------------------------------------------------------------
# The packed columns (afk.store._packed): table, its key, the column, and how it is packed.
PACKED: tuple[tuple[str, str, pk.Column], ...] = (
    ("runs", "run_id", "snapshot"),
    ("requests", "request_id", "request"),
    ("log", "id", "payload"),
)
DIGESTS = (
    ("runs", "run_id", ("mac",)),
    ("requests", "request_id", ("args_digest", "bound_digest", "mac")),
    ("log", "id", ("prev_hash", "hash")),
)


def needs_pack_migration(found: str | None) -> bool:
    """A store whose JSON and digest columns hold text (< 8)."""
    return found is not None and int(found) < 8


# Postgres: which of them are still text (then made BYTEA); SQLite stores bytes in any column.
_PAIRS = ", ".join(
    [f"('{table}', '{column}')" for table, _, column in PACKED]
    + [f"('{table}', '{column}')" for table, _, columns in DIGESTS for column in columns]
)
TEXT_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
    f"AND data_type = 'text' AND (table_name, column_name) IN ({_PAIRS})"
)


def _page(table: str, key: str, columns: Sequence[str]) -> str:
    return (
        f"SELECT {key}, {', '.join(columns)} FROM {{t}}{table} WHERE {key} > ? "
        f"ORDER BY {key} LIMIT ?"
    )


def _to_bytea(table: str, column: str) -> Q:
    return Q(
        f"ALTER TABLE {{t}}{table} ALTER COLUMN {column} TYPE BYTEA "
        f"USING convert_to({column}, 'UTF8')"
    )


def _digests(row: Sequence[Any]) -> tuple[Any, ...]:
    """A DIGESTS page row (key, then columns) as stored from now on: the same values, packed
    (a value already packed, or NULL, comes back equal, so its row is not rewritten)."""
    key, *values = row
    stored = [bytes(v) if isinstance(v, memoryview) else v for v in values]
    return (key, *(pk.pack_digest(pk.unpack_digest(v)) for v in stored))


def pack_columns(text: Iterable[Sequence[str]] = ()) -> Proc[None]:
    """v7 → v8, in setup's transaction, after every older migration (they read and write
    text): the ``text`` (table, column) pairs become BYTEA, the text as UTF-8 (Postgres),
    then every value not yet packed is packed, a page at a time in key order. MACs and the
    ledger's hashes are untouched: they cover the text, which reads back the same."""
    convert = {(table, column) for table, column in text}
    for table, column in sorted(convert):
        yield _to_bytea(table, column)
    for table, key, column in PACKED:
        update = f"UPDATE {{t}}{table} SET {column} = ? WHERE {key} = ?"
        after: Any = 0 if key == "id" else ""
        while rows := (yield Q(_page(table, key, (column,)), (after, MIGRATION_PAGE), fetch="all")):
            packed = [
                (pk.pack(column, pk.unpack(column, v)), k) for k, v in rows if not pk.is_packed(v)
            ]
            if packed:
                yield Q(update, packed, many=True)
            after = rows[-1][0]
    for table, key, columns in DIGESTS:
        sets = ", ".join(f"{column} = ?" for column in columns)
        update = f"UPDATE {{t}}{table} SET {sets} WHERE {key} = ?"
        after = 0 if key == "id" else ""
        while rows := (yield Q(_page(table, key, columns), (after, MIGRATION_PAGE), fetch="all")):
            packed = [_digests(row) for row in rows]
            if changed := [new for new, row in zip(packed, rows, strict=True) if new != row]:
                yield Q(update, [(*new[1:], new[0]) for new in changed], many=True)
            after = rows[-1][0]


# -- store schema 10 -----------------------------------------------------------------------
def needs_fill_migration(found: str | None) -> bool:
    """A store whose runs and requests indexes split at Postgres's default fill (< 10)."""
    return found is not None and int(found) < 10


# Every index of runs and requests: created {filled} (afk.store._common.render).
FILLED_INDEXES = tuple(_NAMED.findall("\n".join((*p.INDEXES, *r.INDEXES, *ls.INDEXES))))
# Postgres, v9 → v10: only later page splits pack full (rewriting the indexes would hold
# their tables' writers for as long as it takes; a REINDEX at a quiet time does it).
FILL_INDEXES = tuple(
    f"ALTER INDEX IF EXISTS {{t}}{name} SET (fillfactor = 100)" for name in FILLED_INDEXES
)
# SQLite: a rowid table keyed by TEXT has this second b-tree repeating its key; a WITHOUT
# ROWID table does not, so a store that still has one is not current (see is_current) and
# setup rebuilds it (rebuild_without_rowid).
ROWID_KEYS = frozenset({"sqlite_autoindex_runs_1", "sqlite_autoindex_requests_1"})
# The tables rebuilt, their DDL (afk.store._common.DDL) and every column they hold.
_REBUILT = (
    ("runs", c.DDL[1], (*c.RUN_COLS, "wake_at")),
    ("requests", c.DDL[2], (*c.REQUEST_COLS, "schema_id", "schema_at", "rule_id", "agent_name")),
)


def rebuild_without_rowid() -> Proc[None]:
    """SQLite, v9 → v10, in setup's transaction after every other migration: runs and
    requests as WITHOUT ROWID tables (their rows in the primary key's b-tree; each index
    entry ends in the key it already holds instead of a rowid). A table that is already one
    is left alone, whatever the store's version says; the rows are copied as they are (MACs
    cover their values, not where they are kept). Dropping the old table drops its
    indexes, so they are made again."""
    rebuilt = False
    for table, ddl, columns in _REBUILT:
        (sql,) = yield Q(SQLITE_TABLE_SQL, (table,), fetch="one")
        if "WITHOUT ROWID" in sql.upper():
            continue
        names = ", ".join(columns)
        yield Q(f"ALTER TABLE {table} RENAME TO {table}_v9")
        yield Q(ddl)
        yield Q(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_v9")
        yield Q(f"DROP TABLE {table}_v9")
        rebuilt = True
    if rebuilt:
        for index in (*p.INDEXES, *r.INDEXES, *ls.INDEXES):
            yield Q(index)
