"""What a gated call pays to look for a standing grant, by how many grants the store holds.

Run: python benchmarks/bench_grants.py [N ...]   (default 100 1000 10000)

Per store (SQLite in a temp file; Postgres at $AFK_BENCH_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/test, in a throwaway schema dropped afterwards,
skipped with a note when unreachable), the store holds N active grants of other agents
(``agent`` scope, the same tool) and of other tools, plus one that covers the call. Timed,
median of 200 calls: ``Grants.use`` for a call it covers (the lookup, the MAC check of each
grant found, the use counted with its ledger entry) and for a call no grant covers (the
lookup alone), next to reading every active grant (``list_grants(active_at=)``), which is
what the lookup did before the ``grants_active`` index (``setup()`` creates it).

Target: the lookup flat in N. Measured here (``python benchmarks/bench_grants.py 100 1000
10000``, medians, ms; use covered / not covered / every active grant read):

- SQLite: 0.70 / 0.01 / 0.59 at 100, 0.37 / 0.01 / 5.65 at 1,000, 0.42 / 0.01 / 65.0 at
  10,000;
- Postgres: 1.43 / 0.22 / 0.83 at 100, 0.21 and 0.19 not covered at 1,000 and 10,000, and
  every active grant read 5.70 and 59.1 ms. "Covered" there climbs to 3.1 ms over the run
  because every sample counts a use of the same grant row (each an UPDATE: a chain of row
  versions until vacuum), not with N: run alone at 10,000 it takes 1.16 ms.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

from _pg import PG_DSN

from afk.approvals.grants import Grants
from afk.store import RunStore, open_store
from afk.store.store import GrantRecord

os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))  # Postgres stores need one
SAMPLES = 200


def grant(i: int, *, tool: str, agent: str) -> GrantRecord:
    return GrantRecord(
        grant_id=f"grant_{i:08d}", tool_name=tool, scope="agent", scope_value=agent,
        when="{}", until=time.time() + 86_400, created_by="bench", created_at=float(i),
    )  # fmt: skip


async def fill(store: RunStore, have: int, n: int) -> None:
    for i in range(have, n):
        # Half share the tool (other agents), half are other tools' grants for this agent.
        other = (
            grant(i, tool="refund", agent=f"agent-{i}")
            if i % 2
            else grant(i, tool=f"tool-{i}", agent="billing")
        )
        await store.add_grant(other)


async def median_ms(call: Callable[[], Awaitable[object]]) -> float:
    await call()
    times = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


async def measure(url: str, sizes: list[int]) -> list[tuple[int, float, float, float]]:
    store = open_store(url)
    await store.setup()
    grants = Grants(store)
    await store.add_grant(grant(10**7, tool="refund", agent="billing"))  # the covering one
    rows, have = [], 0
    try:
        for n in sizes:
            await fill(store, have, n)
            have = n

            async def covered() -> object:
                values = {"thread": None, "agent": "billing", "user": None}
                found = await grants.use("refund", {}, values, run_id="run_x", call_id="c")
                assert found is not None
                return found

            async def uncovered() -> object:
                values = {"thread": None, "agent": "nobody", "user": None}
                return await grants.use("refund", {}, values, run_id="run_x", call_id="c")

            async def every() -> object:
                return await store.list_grants(active_at=time.time())

            rows.append(
                (n, await median_ms(covered), await median_ms(uncovered), await median_ms(every))
            )
    finally:
        await store.close()
    return rows


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000, 10000]
    results: dict[str, list[tuple[int, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = asyncio.run(measure(f"sqlite:///{tmp}/grants.db", sizes))
    schema = f"afk_bench_{uuid.uuid4().hex[:8]}"
    try:
        results["postgres"] = asyncio.run(measure(f"{PG_DSN}?afk_schema={schema}", sizes))
    except Exception as exc:  # no server here: the SQLite half still stands
        print(f"postgres skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        asyncio.run(_drop(schema))
    head = ("store", "grants", "use, covered", "use, not covered", "read every active grant")
    table = [head] + [
        (name, f"{n:,}", f"{a:.2f} ms", f"{b:.2f} ms", f"{c:.2f} ms")
        for name, rows in results.items()
        for n, a, b, c in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    table.insert(1, tuple("-" * w for w in widths))
    for line in table:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(line, widths, strict=True))).rstrip())  # fmt: skip
    print(f"medians of {SAMPLES} calls; target: use flat in the number of grants")


async def _drop(schema: str) -> None:
    try:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
    except Exception:  # nothing was made
        return
    async with conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


if __name__ == "__main__":
    main()
