"""One racer for test_concurrency, run as its own process.

Usage: python race_worker.py NAME sqlite PATH | python race_worker.py NAME postgres DSN SCHEMA
Prints ``ready`` once connected, then for each stdin line ``decide <request_id>`` or
``lease <run_id>`` performs it and prints ``won`` or ``lost``; for ``claim <n>`` claims ready
runs until none is left (at most n) and prints the run ids it got, space separated.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from afk.errors import AlreadyDecidedError
from afk.store import PostgresStore, SQLiteStore
from afk.store.store import RunStore


async def attempt(store: RunStore, name: str, op: str, key: str) -> bool:
    if op == "lease":
        return await store.acquire_lease(key, owner=name, ttl_s=60, now=time.time())
    try:
        await store.decide(
            key,
            decision=json.dumps({"kind": "allow", "approver": name}),
            decided_by="human",
            approver=name,
            bound_digest="d" * 64,
            now=time.time(),
        )
    except AlreadyDecidedError:
        return False
    return True


async def claim_all(store: RunStore, name: str, most: int) -> str:
    got = []
    while len(got) < most:
        found = await store.claim_ready(owner=name, ttl_s=60, now=time.time())
        if found is None:
            break
        got.append(found.run_id)
    return " ".join(got) or "-"


async def main(name: str, kind: str, location: str, schema: str = "") -> None:
    store = SQLiteStore(location) if kind == "sqlite" else PostgresStore(location, schema=schema)
    await store.list_runs(limit=1)  # connect now, so the race itself is only the write
    print("ready", flush=True)
    while line := sys.stdin.readline():
        op, key = line.split()
        if op == "claim":
            print(await claim_all(store, name, int(key)), flush=True)
            continue
        print("won" if await attempt(store, name, op, key) else "lost", flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
