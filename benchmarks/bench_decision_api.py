"""From an approver's HTTP decision to the tool starting, through a worker (issue 11).

Run: python benchmarks/bench_decision_api.py [N]   (default 40 decisions per store)

``afk serve``'s app runs under uvicorn on 127.0.0.1 (a real socket, HTTP parsing, token
authentication); a separate worker process runs ``Runner.work`` (as ``afk worker`` does) on
the same store. N runs are paused first; then, one at a time, the decision is POSTed and the
time until the tool's body starts (stamped by the worker's tool in a file, wall clock) is
measured. Prints p50 and p95 per store (SQLite; Postgres when reachable). The POST's own
round trip is printed beside it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn
from _pg import PG_DSN, reachable

from afk.console import app
from afk.core import Runner, RunnerConfig
from afk.store import _tokens as tk
from afk.store import open_store
from afk.store.store import TokenRecord

HERE = Path(__file__).parent
os.environ.setdefault("AFK_SECRET_KEY", secrets.token_hex(32))
N = 40  # decisions per store (argv[1])

WORKER = """
import asyncio, os, sys, time
sys.path.insert(0, {here!r})
from bench_decision_api import agent, policy
from afk.core import Runner, RunnerConfig

async def main():
    runner = Runner(policy(), config=RunnerConfig(interaction_mode="external"), store=sys.argv[1])
    print("ready", flush=True)
    await runner.work([agent()], poll_s=0.5)

asyncio.run(main())
"""


def policy() -> object:
    from afk.agents import PolicyEngine, PolicyRule

    return PolicyEngine([PolicyRule("drops", tool="drop_table", action="request_approval")])


def agent() -> object:
    from afk.agents import Agent
    from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
    from afk.tools import tool

    @tool
    def drop_table(name: str) -> str:
        """Drop a table."""
        with open(os.environ["AFK_BENCH_STARTS"], "a") as out:
            out.write(f"{name} {time.time()}\n")
        return f"dropped {name}"

    def model(messages: list[object], tools: list[object]) -> object:
        done = [m for m in messages if isinstance(m, ToolMessage)]
        if done:
            return ModelResponse(text=done[-1].content)
        table = next(m.content for m in messages if isinstance(m, UserMessage))
        return ToolCall("drop_table", {"name": table})

    return Agent("dba", FunctionModel(model), "You drop tables.", tools=[drop_table])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _token(url: str) -> str:
    store = open_store(url)
    await store.setup()
    token_id = tk.new_token_id()
    secret = tk.new_secret(token_id)
    record = TokenRecord(
        token_id=token_id, principal_id="alice", secret_hash=tk.secret_hash(secret),
        created_at=time.time(),
    )  # fmt: skip
    await store.add_token(record)
    await store.close()
    return secret


async def measure(name: str, url: str) -> list[str]:
    starts = Path(tempfile.mkdtemp()) / "starts.txt"
    starts.touch()
    os.environ["AFK_BENCH_STARTS"] = str(starts)
    config = RunnerConfig(interaction_mode="external")
    async with Runner(policy(), config=config, store=url) as runner:  # type: ignore[arg-type]
        paused = [await runner.run(agent(), user_message=f"t{i}") for i in range(N)]  # type: ignore[arg-type]
    secret = await _token(url)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app(store=url), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(here=str(HERE)), url],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    await asyncio.sleep(1.0)  # the worker's first pass and its LISTEN are in place
    while not server.started:
        await asyncio.sleep(0.05)
    waits, posts = [], []
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
            for i, run in enumerate(paused):
                request_id = run.pending_requests[0].request_id
                sent = time.time()
                answer = await c.post(
                    f"/api/v1/requests/{request_id}/decision", json={"kind": "allow"}
                )
                posts.append((time.time() - sent) * 1000)
                assert answer.status_code == 200, answer.text
                while (started := _started(starts, f"t{i}")) is None:
                    await asyncio.sleep(0.001)
                waits.append((started - sent) * 1000)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        server.should_exit = True
        thread.join(timeout=10)
    q = statistics.quantiles(waits, n=20)
    return [
        name,
        f"{statistics.median(waits):.1f}",
        f"{q[18]:.1f}",
        f"{statistics.median(posts):.1f}",
    ]


def _started(path: Path, name: str) -> float | None:
    for line in path.read_text().splitlines():
        table, at = line.split()
        if table == name:
            return float(at)
    return None


async def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(await measure("sqlite", f"sqlite:///{tmp}/runs.db"))
    if await reachable():
        import psycopg

        schema = f"bench_decision_{uuid.uuid4().hex[:8]}"
        try:
            rows.append(await measure("postgres", f"{PG_DSN}?afk_schema={schema}"))
        finally:
            async with await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    head = ["store", "POST -> tool start p50 ms", "p95 ms", "POST round trip p50 ms"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for line in [head, ["-" * w for w in widths], *rows]:
        cells = enumerate(zip(line, widths, strict=True))
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in cells))
    print(f"{N} decisions per store, one at a time, through afk serve's app and a worker process")


if __name__ == "__main__":
    N = int(sys.argv[1]) if len(sys.argv) > 1 else N
    asyncio.run(main())
