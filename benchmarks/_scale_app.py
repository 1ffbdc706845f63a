"""The application `afk worker --app _scale_app:app` runs for benchmarks/bench_scale.py.

bench_durable's refund agent and policy, with a tool that appends one line per execution,
``<run_id> <time.monotonic()> <pid>``, to the file named by $AFK_BENCH_TOOL_LOG: the bench
reads tool start times from it (CLOCK_MONOTONIC is one clock for every process on Linux) and
counts executions per run. With $AFK_BENCH_GATE set, ``app()`` (called by ``afk worker``
once its imports are done) creates ``<gate>.ready.<pid>`` and waits for ``<gate>.go``, so
several workers can start resuming at the same moment.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench_durable import POLICY, _model

from afk.agents import Agent
from afk.core import Runner, RunnerConfig
from afk.llms import FunctionModel
from afk.tools import ToolContext, tool

TOOL_LOG_ENV = "AFK_BENCH_TOOL_LOG"
GATE_ENV = "AFK_BENCH_GATE"
EXTERNAL = RunnerConfig(interaction_mode="external")


@tool
def refund(order: str, amount: int, ctx: ToolContext) -> str:
    """Refund an order."""
    record_start(ctx.run_id)
    return f"refunded {amount} on {order}"


def record_start(run_id: str) -> None:
    path = os.environ.get(TOOL_LOG_ENV)
    if not path:
        return
    # One write() on an O_APPEND file: lines from several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{run_id} {time.monotonic():.6f} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def read_starts(path: str) -> list[tuple[str, float, int]]:
    """Every line written so far: (run_id, monotonic start time, pid)."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        run_id, at, pid = line.split()
        rows.append((run_id, float(at), int(pid)))
    return rows


def agent() -> Agent:
    return Agent(
        "billing", FunctionModel(_model, name="billing-model"), "You refund.", tools=[refund]
    )


def app() -> dict[str, Any]:
    gate = os.environ.get(GATE_ENV)
    if gate:
        with open(f"{gate}.ready.{os.getpid()}", "w", encoding="ascii"):
            pass
        while not os.path.exists(f"{gate}.go"):
            time.sleep(0.001)
    return {"runner": Runner(POLICY, config=EXTERNAL), "agents": [agent()]}
