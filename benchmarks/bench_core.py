"""Core runtime benchmarks. Run: python benchmarks/bench_core.py

Prints one table. Targets (2-core machine, issue 9): the interactive approved round trip with a
sync tool at least 25x faster than LangGraph's in the same scenario (the issue measured it at
4,277-4,471 µs here), at most 4 KB per waiting run; and the earlier ones: resolve-to-wake
< 1 ms (same loop) / < 10 ms (other thread), policy overhead < 1.5x the bare condition calls,
import < 150 ms. Measured here after the worker-thread change (load ~1.2, medians of six
processes): sync round trip 204-209 µs when the tool's thread shares the loop's vCPU and
313-334 µs when it does not (a cross-vCPU wake costs ~40 µs each way on this VM), inline
170-175 µs, 6.29 KB per waiting run (LangGraph 4,641-4,707 µs, 8.45 KB). The LangGraph
column (benchmarks/langgraph_peer.py) needs ``pip install langgraph``; without it the column
is skipped with a note.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Any

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyEvent, PolicyRule
from afk.core import ApprovalRequested, InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

ROWS: list[tuple[str, str, str, str]] = []
SPEEDUP = 25  # x LangGraph's approved round trip
LANGGRAPH_US = (4277, 4471)  # what the issue measured here, for when LangGraph is missing
WAITING_KB = 4.0


def row(name: str, value: str, target: str = "", peer: str = "") -> None:
    ROWS.append((name, value, peer, target))


def _langgraph() -> Any:
    try:
        import langgraph_peer
    except ImportError:
        return None
    return langgraph_peer


@tool
def drop_table(name: str) -> str:
    return f"dropped {name}"


@tool(name="drop_table", inline=True)
def drop_table_inline(name: str) -> str:
    return f"dropped {name}"


GATE = PolicyEngine(
    rules=[
        PolicyRule(
            "gate",
            condition=lambda e: e.tool_name is not None and "drop" in e.tool_name,
            action="request_approval",
        )
    ]
)


def _agent(tool_: Any = drop_table) -> Agent:
    model = ScriptedModel([ToolCall("drop_table", {"name": "old_logs"}), "Done."])
    return Agent(name="bench", model=model, instructions="x", tools=[tool_])


class _InstantApprover(InMemoryInteractiveProvider):
    """A human who approves on the next loop iteration."""

    def notify(self, event: Any) -> None:
        if isinstance(event, ApprovalRequested):
            asyncio.get_running_loop().call_soon(
                self.resolve_approval, event.request.request_id, ApprovalDecision(kind="allow")
            )


async def _round_trips(runner: Runner, n: int, tool_: Any = drop_table) -> float:
    agent = _agent(tool_)
    for _ in range(50):
        await runner.run(agent, user_message="go")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await runner.run(agent, user_message="go")
        samples.append(time.perf_counter() - t0)
        assert result.state == "completed"
    return statistics.median(samples) * 1e6


def bench_round_trips() -> None:
    interactive = Runner(
        policy_engine=GATE,
        interaction_provider=_InstantApprover(),
        config=RunnerConfig(interaction_mode="interactive"),
    )
    us = asyncio.run(_round_trips(interactive, 2000))
    peer = _langgraph()
    label = "interactive approved round trip, sync tool (median)"
    if peer is None:  # against what the issue measured here
        low, high = LANGGRAPH_US
        target = f">= {SPEEDUP}x LangGraph's {low:,}-{high:,} µs: <= {low / SPEEDUP:.0f} µs"
        row(label, f"{us:.0f} µs ({low / us:.1f}-{high / us:.1f}x faster)", target)
    else:
        theirs = peer.round_trip_us(500)
        row(label, f"{us:.0f} µs ({theirs / us:.1f}x faster)", f">= {SPEEDUP}x", f"{theirs:.0f} µs")
    # The same with @tool(inline=True): the body runs on the event loop, as the LangGraph
    # peer's tool node runs its tool in the calling thread. Shown for the cost of afk's
    # default (a worker thread per sync call, so a blocking tool cannot stall the loop);
    # the target is the default's.
    us = asyncio.run(_round_trips(interactive, 2000, drop_table_inline))
    theirs_text = "" if peer is None else f"{theirs / us:.1f}x faster"
    row("  same, @tool(inline=True) (median)", f"{us:.0f} µs {theirs_text}".strip(), "")
    headless = Runner(policy_engine=GATE, config=RunnerConfig(interaction_mode="headless"))
    us = asyncio.run(_round_trips(headless, 2000))
    row("headless gated round trip (median)", f"{us:.0f} µs", "")


def _request(i: int) -> Any:
    from afk.agents import ApprovalRequest

    now = time.time()
    return ApprovalRequest(
        request_id=f"r{i}",
        run_id="run",
        step=1,
        agent_name="a",
        tool_name="t",
        tool_args={},
        tool_call_id="c",
        rule_id=None,
        reason=None,
        created_at=now,
        expires_at=now + 60,
    )


async def _wake_same_loop(n: int) -> float:
    provider = InMemoryInteractiveProvider()
    samples = []
    for i in range(n):
        marks: list[float] = []
        req = _request(i)

        async def waiter(req: Any = req, marks: list[float] = marks) -> None:
            await provider.request_approval(req)
            marks.append(time.perf_counter())

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        provider.resolve_approval(f"r{i}", ApprovalDecision(kind="allow"))
        await task
        samples.append(marks[0] - t0)
    return statistics.median(samples) * 1e6


async def _wake_other_thread(n: int) -> float:
    provider = InMemoryInteractiveProvider()
    samples = []
    for i in range(n):
        ready = threading.Event()
        sent: list[float] = []

        def human(i: int = i, ready: threading.Event = ready, sent: list[float] = sent) -> None:
            ready.wait()
            sent.append(time.perf_counter())
            provider.resolve_approval(f"r{i}", ApprovalDecision(kind="allow"))

        thread = threading.Thread(target=human)
        thread.start()
        req = _request(i)
        waiting = asyncio.create_task(provider.request_approval(req))
        await asyncio.sleep(0)
        ready.set()
        await waiting
        woke = time.perf_counter()
        thread.join()
        samples.append(woke - sent[0])
    return statistics.median(samples) * 1e6


def bench_wake() -> None:
    us = asyncio.run(_wake_same_loop(2000))
    row("resolve-to-wake, same loop (median)", f"{us:.1f} µs", "< 1 ms")
    us = asyncio.run(_wake_other_thread(500))
    row("resolve-to-wake, other thread (median)", f"{us:.1f} µs", "< 10 ms")


async def _waiting_memory(n: int) -> float:
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        policy_engine=GATE,
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive"),
    )
    agent = _agent()
    warm = runner.run_stream(agent, user_message="go")
    while not provider.pending():
        await asyncio.sleep(0)
    provider.resolve_approval(provider.pending()[0].request_id, ApprovalDecision(kind="allow"))
    await warm.result()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    handles = [runner.run_stream(agent, user_message="go") for _ in range(n)]
    while len(provider.pending()) < n:
        await asyncio.sleep(0.001)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    for req in provider.pending():
        provider.resolve_approval(req.request_id, ApprovalDecision(kind="deny"))
    for h in handles:
        await h.result()
    return grown / n


def bench_memory() -> None:
    per_run = asyncio.run(_waiting_memory(1000))
    peer = _langgraph()
    theirs = "" if peer is None else f"{peer.waiting_bytes(1000) / 1024:.2f} KB"
    label = "memory per run waiting for a human"
    row(label, f"{per_run / 1024:.2f} KB", f"<= {WAITING_KB:g} KB", theirs)


def _policy_cost(count: int) -> tuple[float, float]:
    def cond(e: PolicyEvent, k: str = "") -> bool:
        return e.tool_name == k

    conds = [lambda e, k=f"tool_{i}": cond(e, k) for i in range(count)]
    engine = PolicyEngine(
        rules=[PolicyRule(f"r{i}", condition=c, action="deny") for i, c in enumerate(conds)]
    )
    event = PolicyEvent(tool_name="drop_table", tool_args={"name": "x"})
    reps = max(200, 200_000 // count)

    def bare() -> None:
        for c in conds:
            c(event)

    def timed(fn: Any) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - t0) / reps)
        return best

    return timed(lambda: engine.evaluate(event)) * 1e6, timed(bare) * 1e6


def bench_policy() -> None:
    for count in (10, 100, 1000):
        engine_us, bare_us = _policy_cost(count)
        row(
            f"policy evaluate, {count} callable rules",
            f"{engine_us:.2f} µs ({engine_us / bare_us:.2f}x bare {bare_us:.2f} µs)",
            "< 1.5x",
        )


def bench_import() -> None:
    code = (
        "import time; t=time.perf_counter(); import afk.agents, afk.core; "
        "print(time.perf_counter()-t)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # compile
    times = []
    for _ in range(7):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(float(out.stdout))
    row(
        "import afk.agents, afk.core (median of 7)",
        f"{statistics.median(times) * 1e3:.1f} ms",
        "< 150 ms",
    )


def main() -> None:
    bench_round_trips()
    bench_wake()
    bench_memory()
    bench_policy()
    bench_import()
    head = ("benchmark", "afk", "LangGraph", "target")
    table = [head, *ROWS]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    table.insert(1, tuple("-" * w for w in widths))
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    if _langgraph() is None:
        print("LangGraph column skipped: not installed (pip install langgraph)")


if __name__ == "__main__":
    main()
