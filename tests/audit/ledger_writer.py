"""One ledger writer for test_audit_writers, run as its own process.

Usage: python ledger_writer.py STORE_URL NAME N
Prints ``ready`` once connected, waits for a line on stdin, then appends N entries, each in
its own transaction (alternating a plain append and a run save), and prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys
import time

from afk.store import open_store
from afk.store.store import LogEntry, RunRecord


async def main(url: str, name: str, n: int) -> None:
    store = open_store(url)
    await store.list_log(limit=1)  # connect now, so only the appends race
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        entry = LogEntry(kind="refused", run_id=name, request_id=f"{name}:{i}", actor=name)
        if i % 2:
            await store.log_refusal(entry)
        else:
            now = time.time()
            run = RunRecord(
                run_id=name, agent_name="w", status="running", snapshot="{}", schema_version=1,
                created_at=now, updated_at=now,
            )  # fmt: skip
            await store.save_run(run, log=[entry])
        await asyncio.sleep(0.002)  # let the other writer in: SQLite's lock is not fair
    await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
