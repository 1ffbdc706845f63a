"""Bytes on disk per paused run, by table. Run: python benchmarks/bench_paused_size.py [N]

N (default 1,000) runs of bench_durable's refund agent pause on their one gated call (external
mode, through the public Runner API). Per table (its indexes and, on Postgres, its TOAST
included), divided by N:

- SQLite: growth of the table's pages (``dbstat``) between two ``VACUUM``-ed states, so free
  pages and the WAL do not count; the total is the file's growth after ``VACUUM``;
- Postgres: growth of ``pg_total_relation_size`` (a throwaway schema, dropped afterwards;
  $AFK_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test, skipped with a note
  when unreachable);
- both: the stored column bytes of those runs' rows (text as UTF-8, numbers as 8), the data
  without the page, tuple and index overhead.

Target (issue 9): at most 2,000 bytes per paused run on disk, on both stores.

Measured here (N=1,000, disk bytes per paused run, SQLite / Postgres):

- store schema 5: 4,686 / 5,505 (runs 844/983, requests 1,327/1,384, events 1,491/1,991,
  log 1,024/1,147);
- store schema 6: 3,330 / 3,760 (runs 844/975, requests 1,122/1,212, event_batches 340/426,
  log 1,024/1,147): events as one deflated batch per checkpoint, tool schemas stored once.

- store schema 8: 1,917 / 2,441 (runs 455/573, requests 582/737, event_batches 295/426,
  log 586/705; column bytes 1,434 of 2,555 before): snapshots, requests and ledger payloads
  deflated from per-column dictionaries, keyed digests and MACs as 39 bytes instead of 77
  characters, requests_page_run dropped, 16-hex tool schema ids, SQLite's event_batches
  WITHOUT ROWID (afk.store._packed).
- store schema 9: 2,212 / 2,826 (runs 455/582, requests 877/1,106, event_batches 295/434,
  log 586/705): the pending list's rule_id and agent_name columns and four partial indexes.
- store schema 10: 2,011 / 2,654 (runs 393/541, requests 737/983, event_batches 295/426,
  log 586/705; column bytes 1,424): ids of 26 base32 characters after their prefix
  (afk._ids), SQLite's runs and requests WITHOUT ROWID, Postgres's runs and requests
  indexes at fillfactor 100 (afk.store._migrate).
- the snapshot's active time to the microsecond (it had 17 significant digits): 1,991 /
  2,662 (runs 373/541; column bytes 1,416).

What is left on Postgres is mostly its row and index overhead: about 900 of the 2,654
bytes are index entries (eleven per paused run, each with an 8-byte tuple header, a 4-byte
line pointer, alignment and B-tree slack; the four primary keys, inserted in random order,
fill about 60-70% of their pages), about 60 the free-space and visibility maps, and five
heap tuples of about 30 bytes of header each.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

from bench_durable import PG_DSN, POLICY, agent, row_bytes  # the same agent and policy

from afk.core import Runner, RunnerConfig

os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # Postgres stores need one
# events: one row per checkpoint since store schema 6 (afk.store._event_batches); tool
# schemas: stored once per distinct schema (afk.store._tool_schemas).
TABLES = ("runs", "requests", "tool_schemas", "event_batches", "log", "executions", "timers")
TARGET = 2000
WARM = 20  # runs before the first measurement: schema, meta rows, first pages
# What a store holds: per table, bytes on disk and stored column bytes ("*": the whole store).
Sizes = Callable[[], Awaitable[dict[str, tuple[int, int]]]]


async def pause(url: str, n: int, prefix: str) -> None:
    """``n`` runs that return paused."""
    async with Runner(POLICY, config=RunnerConfig(interaction_mode="external"), store=url) as r:
        for i in range(n):
            result = await r.run(agent(), user_message=f"{prefix}-{i:06d}")
            assert result.state == "paused", result.error


async def measure(url: str, n: int, sizes: Sizes) -> dict[str, tuple[float, float]]:
    """Per table and in total: growth per paused run of (disk bytes, column bytes)."""
    await pause(url, WARM, "warm")
    before = await sizes()
    await pause(url, n, "order")
    after = await sizes()
    out: dict[str, tuple[float, float]] = {}
    for table in TABLES:
        (disk0, cols0), (disk1, cols1) = before.get(table, (0, 0)), after.get(table, (0, 0))
        out[table] = ((disk1 - disk0) / n, (cols1 - cols0) / n)
    disk = (after["*"][0] - before["*"][0]) / n
    out["total"] = (disk, sum(columns for _, columns in out.values()))
    return out


def run_sqlite(n: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "runs.db")

        async def sizes() -> dict[str, tuple[int, int]]:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                # Pages sit in the WAL until a checkpoint, free ones until a VACUUM.
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema"))
                disk: dict[str, int] = {}
                for name, size in conn.execute(
                    "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
                ):
                    disk[owner.get(name, name)] = disk.get(owner.get(name, name), 0) + size
                out = {t: (disk.get(t, 0), row_bytes(conn.execute(f"SELECT * FROM {t}").fetchall()))
                       for t in TABLES}  # fmt: skip
            finally:
                conn.close()
            out["*"] = (os.path.getsize(path), 0)
            return out

        return asyncio.run(measure(f"sqlite:///{path}", n, sizes))


def run_postgres(n: int) -> dict[str, tuple[float, float]] | None:
    import psycopg

    schema = f"afk_bench_{uuid.uuid4().hex[:8]}"

    async def main() -> dict[str, tuple[float, float]] | None:
        try:
            admin = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
        except psycopg.OperationalError as exc:
            print(f"postgres skipped: {exc}".strip(), file=sys.stderr)
            return None

        async def sizes() -> dict[str, tuple[int, int]]:
            cur = await admin.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace s ON s.oid = c.relnamespace "
                "WHERE s.nspname = %s AND c.relkind = 'r'",
                (schema,),
            )
            disk = {name: int(size) for name, size in await cur.fetchall()}
            out = {}
            for table in TABLES:
                cur = await admin.execute(f'SELECT * FROM "{schema}".{table}'.encode())
                out[table] = (disk.get(table, 0), row_bytes(await cur.fetchall()))
            out["*"] = (sum(disk.values()), 0)
            return out

        try:
            return await measure(f"{PG_DSN}?afk_schema={schema}", n, sizes)
        finally:
            await admin.execute("SET lock_timeout = '10s'")
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
            await admin.close()

    return asyncio.run(main())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    started = time.perf_counter()
    stores = {"sqlite": run_sqlite(n), "postgres": run_postgres(n)}
    found = {name: result for name, result in stores.items() if result is not None}
    head = ["bytes per paused run"]
    for name in found:
        head += [f"{name} disk", f"{name} columns"]
    table = [head]
    for label in (*TABLES, "total"):
        cells = [label]
        for result in found.values():
            disk, columns = result[label]
            cells += [f"{disk:,.0f}", f"{columns:,.0f}"]
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    table.insert(1, ["-" * w for w in widths])
    for line in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(line, widths, strict=True))).rstrip())  # fmt: skip
    verdict = ", ".join(
        f"{name} {result['total'][0]:,.0f} B ({'ok' if result['total'][0] <= TARGET else 'over'})"
        for name, result in found.items()
    )
    print(f"target: disk total <= {TARGET:,} B per paused run; {verdict}")
    print(f"{n:,} paused runs per store; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
