"""Fill a store with N paused runs fast, for benchmarks/bench_scale.py: one real paused run,
cloned in bulk.

The template's rows in every table holding a run's state (runs, requests, event_batches, and the
executions, votes or timers it may have) are copied with fresh run and request ids, in one
transaction per call (SQLite ``executemany``, Postgres ``COPY``). Rows of sealed tables get a
MAC recomputed with the store's keys (:func:`afk.store._seal.sealed`), so they verify; the
keyed argument digests stay valid because the arguments do not change. The decision log is
not copied: clones carry no ledger rows. Unsealed columns (leases, ``wake_at``) are copied as
they are: a clone keeps the template's ``expires_at``, so the template's ``wake_at`` is right
for it too. Tables are read from the live schema, so a column added later is cloned too.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from afk.audit.keys import Keyring
from afk.store import _packed as pk
from afk.store import _seal as s
from afk.store import _tool_schemas as tool_schemas
from afk.store.store import ExecutionRecord, RequestRecord, RunRecord, VoteRecord

# The tables whose rows a clone gets; others (the ledger, grants, meta) are not a run's own.
SEALED: dict[str, type[Any]] = {
    "runs": RunRecord,
    "requests": RequestRecord,
    "executions": ExecutionRecord,
    "votes": VoteRecord,
}
UNSEALED = ("event_batches", "timers")
BATCH = 2_000  # clones per executemany / COPY chunk


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    name: str
    cols: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    run_id: str
    request_ids: tuple[str, ...]
    tables: tuple[Table, ...]
    schemas: dict[str, str]  # tool_schemas: a request row's MAC covers its schema's text


@dataclass(frozen=True, slots=True, kw_only=True)
class Clone:
    run_id: str
    request_ids: tuple[str, ...]


def _select(table: str, cols: Sequence[str], n_requests: int) -> str | None:
    if "run_id" in cols:
        return "run_id = ?"
    if "request_id" in cols and n_requests:
        return f"request_id IN ({', '.join('?' for _ in range(n_requests))})"
    return None


def _sealer(table: str, cols: tuple[str, ...], schemas: dict[str, str]) -> Any:
    """A function giving a row its MAC, or None for an unsealed table."""
    kind = SEALED.get(table)
    if kind is None:
        return None
    names = {f.name for f in dataclasses.fields(kind)} - {"mac"}
    missing = names - set(cols)
    if missing:
        raise SystemExit(f"cannot clone {table}: columns {sorted(missing)} are not in the table")
    index = {name: cols.index(name) for name in names}
    mac_at = cols.index("mac")

    def seal(keys: Keyring, row: list[Any]) -> None:
        fields = {name: row[i] for name, i in index.items()}
        if table == "requests" and "schema_at" in cols:  # the text as read: schema put back
            at, schema = row[cols.index("schema_at")], row[cols.index("schema_id")]
            fields["request"] = tool_schemas.joined(fields["request"], at, schemas.get(schema))
        row[mac_at] = s.mac_of(keys, kind(**fields))

    return seal


# Columns runs and requests store packed (afk.store._packed, store schema 8): a template's
# rows hold their text, so ids inside them can be rewritten and MACs computed, then packed.
_JSON = {("runs", "snapshot"), ("requests", "request")}
_DIGEST = {"mac", "args_digest", "bound_digest"}


def _as_text(table: str, cols: Sequence[str], row: Sequence[Any]) -> tuple[Any, ...]:
    if table not in ("runs", "requests"):
        return tuple(row)
    return tuple(
        pk.unpack(c, v) if (table, c) in _JSON  # type: ignore[arg-type]
        else pk.unpack_digest(v) if c in _DIGEST else v
        for c, v in zip(cols, row, strict=True)
    )  # fmt: skip


def _as_stored(table: str, cols: Sequence[str], row: Sequence[Any]) -> tuple[Any, ...]:
    if table not in ("runs", "requests"):
        return tuple(row)
    return tuple(
        pk.pack(c, v) if (table, c) in _JSON  # type: ignore[arg-type]
        else pk.pack_digest(v) if c in _DIGEST else v
        for c, v in zip(cols, row, strict=True)
    )  # fmt: skip


def _clone_rows(
    keys: Keyring, template: Template, table: Table, clones: Sequence[Clone]
) -> Iterator[tuple[Any, ...]]:
    seal = _sealer(table.name, table.cols, template.schemas)
    olds = (template.run_id, *template.request_ids)
    # Which values name the template's ids, found once: only those are rewritten per clone.
    edits = [
        [(i, v) for i, v in enumerate(row) if isinstance(v, str) and any(o in v for o in olds)]
        for row in table.rows
    ]
    for clone in clones:
        pairs = list(zip(olds, (clone.run_id, *clone.request_ids), strict=True))
        for source, todo in zip(table.rows, edits, strict=True):
            row = list(source)
            for i, value in todo:
                for old, new in pairs:
                    value = value.replace(old, new)
                row[i] = value
            if seal is not None:
                seal(keys, row)
            yield _as_stored(table.name, table.cols, row)


def fresh_clones(template: Template, n: int) -> list[Clone]:
    return [
        Clone(
            run_id=f"run_{uuid.uuid4().hex}",
            request_ids=tuple(f"req_{uuid.uuid4().hex}" for _ in template.request_ids),
        )
        for _ in range(n)
    ]


# -- SQLite ------------------------------------------------------------------------------------
def sqlite_template(path: str, run_id: str) -> Template:
    with sqlite3.connect(path) as conn:
        requests = tuple(
            r[0]
            for r in conn.execute("SELECT request_id FROM requests WHERE run_id = ?", (run_id,))
        )
        tables = []
        for name in (*SEALED, *UNSEALED):
            cols = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({name})"))
            where = _select(name, cols, len(requests))
            if where is None:
                continue
            args = (run_id,) if where.startswith("run_id") else requests
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {name} WHERE {where}", args)
            texts = tuple(_as_text(name, cols, row) for row in rows.fetchall())
            tables.append(Table(name=name, cols=cols, rows=texts))
        schemas = dict(conn.execute("SELECT schema_id, body FROM tool_schemas").fetchall())
    return Template(run_id=run_id, request_ids=requests, tables=tuple(tables), schemas=schemas)


def sqlite_clone(path: str, keys: Keyring, template: Template, n: int) -> list[Clone]:
    """Add ``n`` clones of ``template`` in one transaction."""
    made = fresh_clones(template, n)
    conn = sqlite3.connect(path)
    # A bulk load: a big page cache keeps the random-id index inserts off the disk until the
    # commit, and the commit need not wait for fsync (the bench does not survive a crash).
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("PRAGMA synchronous = OFF")
    try:
        with conn:
            for first in range(0, n, BATCH):
                chunk = made[first : first + BATCH]
                for table in template.tables:
                    if not table.rows:
                        continue
                    marks = ", ".join("?" for _ in table.cols)
                    sql = f"INSERT INTO {table.name} ({', '.join(table.cols)}) VALUES ({marks})"
                    conn.executemany(sql, _clone_rows(keys, template, table, chunk))
    finally:
        conn.close()
    return made


# -- Postgres ----------------------------------------------------------------------------------
async def postgres_template(dsn: str, schema: str, run_id: str) -> Template:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            f'SELECT request_id FROM "{schema}".requests WHERE run_id = %s'.encode(), (run_id,)
        )
        requests = tuple(str(r[0]) for r in await cur.fetchall())
        tables = []
        for name in (*SEALED, *UNSEALED):
            cur = await conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position",
                (schema, name),
            )
            cols = tuple(str(r[0]) for r in await cur.fetchall())
            where = _select(name, cols, len(requests))
            if where is None:
                continue
            args = (run_id,) if where.startswith("run_id") else requests
            query = f'SELECT {", ".join(cols)} FROM "{schema}".{name} WHERE {where}'
            cur = await conn.execute(query.replace("?", "%s").encode(), args)
            rows = tuple(_as_text(name, cols, r) for r in await cur.fetchall())
            tables.append(Table(name=name, cols=cols, rows=rows))
        cur = await conn.execute(f'SELECT schema_id, body FROM "{schema}".tool_schemas'.encode())
        schemas = {str(k): str(v) for k, v in await cur.fetchall()}
    return Template(run_id=run_id, request_ids=requests, tables=tuple(tables), schemas=schemas)


async def postgres_clone(
    dsn: str, schema: str, keys: Keyring, template: Template, n: int
) -> list[Clone]:
    """Add ``n`` clones of ``template`` in one transaction (COPY per table)."""
    import psycopg

    made = fresh_clones(template, n)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.cursor() as cur:
            for table in template.tables:
                if not table.rows:
                    continue
                sql = f'COPY "{schema}".{table.name} ({", ".join(table.cols)}) FROM STDIN'
                async with cur.copy(sql.encode()) as copy:
                    for row in _clone_rows(keys, template, table, made):
                        await copy.write_row(row)
        await conn.commit()
    return made
