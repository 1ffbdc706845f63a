"""Console benchmark: ``GET /api/v1/requests`` first page and the web inbox's ``/``, flat
in the number of pending requests?

Run: python benchmarks/bench_console.py [N ...]   (default 10000 100000)

For each backend and N, the store holds N paused runs with one pending request each (filled
as benchmarks/bench_listing.py fills them). Prints the median of 20 first pages (50 requests)
through the ASGI app in process, without a socket or HTTP parsing: for the API, token
authentication, the listing and the JSON; for the inbox, the session cookie (its token row
re-read), the listing, the pending count and the rendered HTML. Target (issue 11): under
50 ms at 100,000.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid

import httpx
from _pg import PG_DSN, reachable
from bench_listing import _fill

from afk.console import app
from afk.store import RunStore, open_store
from afk.store import _tokens as tk
from afk.store.store import TokenRecord

SIZES = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
TARGET_MS = 50.0


async def _token(store: RunStore) -> str:
    token_id = tk.new_token_id()
    secret = tk.new_secret(token_id)
    record = TokenRecord(
        token_id=token_id,
        principal_id="alice",
        secret_hash=tk.secret_hash(secret),
        created_at=time.time(),
    )
    await store.add_token(record)
    return secret


async def _first_page_ms(store: RunStore, secret: str) -> float:
    transport = httpx.ASGITransport(app=app(store=store))
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as http:
        await http.get("/api/v1/requests")  # connections, caches
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            answer = await http.get("/api/v1/requests")
            times.append((time.perf_counter() - t0) * 1000)
        body = answer.json()
        assert answer.status_code == 200 and len(body["items"]) == 50 and body["next_cursor"]
        return statistics.median(times)


async def _inbox_ms(store: RunStore, secret: str) -> float:
    transport = httpx.ASGITransport(app=app(store=store))
    async with httpx.AsyncClient(transport=transport, base_url="http://b") as http:
        form = await http.get("/login")  # log in as a browser does: the cookie is kept
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce is not None
        login = {"nonce": nonce.group(1), "token": secret, "next": "/"}
        assert (await http.post("/login", data=login)).status_code == 303
        await http.get("/")  # connections, caches, templates
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            answer = await http.get("/")
            times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200 and answer.text.count('class="row"') == 50
        return statistics.median(times)


async def _bench(name: str, url: str) -> None:
    store = open_store(url)
    await store.setup()
    secret, filled = await _token(store), 0
    for n in SIZES:
        await _fill(store, filled, n)
        filled = n
        for what, measure in (("api", _first_page_ms), ("inbox /", _inbox_ms)):
            page_ms = await measure(store, secret)
            mark = "ok" if page_ms < TARGET_MS else "SLOW"
            print(f"{name:<8} {what:<8} {n:>8,} {page_ms:>9.2f} ms {mark}")
    await store.close()


async def main() -> None:
    print(
        "GET /api/v1/requests and the inbox / first page (50), median of 20; "
        f"target < {TARGET_MS:g} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        await _bench("sqlite", f"sqlite:///{tmp}/console.db")
    if not await reachable():
        return
    schema = f"afk_bench_{uuid.uuid4().hex[:10]}"
    try:
        await _bench("postgres", f"{PG_DSN}?afk_schema={schema}")
    finally:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


if __name__ == "__main__":
    asyncio.run(main())
