"""The benchmarks' Postgres server: $AFK_BENCH_POSTGRES, by default the local test database,
and whether it answers (when it does not, a benchmark skips Postgres with a note)."""

from __future__ import annotations

import os
import sys

PG_DSN = os.environ.get("AFK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def reachable() -> bool:
    """Whether PG_DSN accepts a connection within 3 s; prints the skip note when not."""
    try:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_DSN, connect_timeout=3):
            return True
    except Exception as exc:
        print(f"postgres: skipped, {PG_DSN} unreachable ({type(exc).__name__})", file=sys.stderr)
        return False
