"""What keyed records and the one decision path cost, before and after.

Run: python benchmarks/bench_keyed_records.py [--against REV] [--runs N]

Measures this checkout and ``--against`` (default: the commit before the trust work, exported
with ``git archive``), each in fresh child processes, in alternating rounds; the best round of
each column is shown:

- approved round trip: interactive run, in-memory provider answered at once, sync tool
  (no store; the decision rule is in the path);
- resolve + resume to tool start: external run on SQLite paused; ``resolve()`` from another
  Runner, then ``resume()``, until the tool body starts (keyed digests, row MACs, keyed
  ledger chain, verification before execution).

Target: "after" under 10% slower than "before".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BEFORE = "ebce792"  # main before the trust issue
TOOL_STARTS: list[float] = []


def _measure(runs: int) -> dict[str, float]:
    from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
    from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
    from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage
    from afk.tools import tool

    @tool(inline=True)
    def refund(order: str, amount: int) -> str:
        """Refund an order."""
        TOOL_STARTS.append(time.perf_counter())
        return "ok"

    def model(messages: list[Any], tools: list[Any]) -> Any:
        if not any(isinstance(m, ToolMessage) for m in messages):
            return ToolCall("refund", {"order": "o-1", "amount": 250})
        return ModelResponse(text="done")

    def agent() -> Agent:
        return Agent("billing", FunctionModel(model, name="bench"), "Refunds.", tools=[refund])

    policy = PolicyEngine(
        [PolicyRule("gate", condition=lambda e: e.tool_name == "refund", action="request_approval")]
    )
    allow = ApprovalDecision(kind="allow", approver="alice")

    async def round_trips() -> float:
        provider = InMemoryInteractiveProvider()
        runner = Runner(policy, provider, RunnerConfig(interaction_mode="interactive"))

        def answer(event: Any) -> None:
            if event.type == "approval_requested":
                provider.resolve_approval(event.request.request_id, allow)

        provider.notify = answer  # type: ignore[attr-defined]
        samples = []
        for i in range(runs * 10 + 50):
            start = time.perf_counter()
            await runner.run(agent(), user_message="refund")
            if i >= 50:
                samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    async def resolve_resume(url: str) -> float:
        external = RunnerConfig(interaction_mode="external")
        async with (
            Runner(policy, config=external, store=url) as runner,
            Runner(store=url) as resolver,
        ):
            samples = []
            for i in range(runs + 10):
                paused = await runner.run(agent(), user_message=f"o-{i}")
                start = time.perf_counter()
                await resolver.resolve(paused.pending_requests[0].request_id, allow)
                await runner.resume(paused.run_id, agent())
                if i >= 10:
                    samples.append(TOOL_STARTS[-1] - start)
            return statistics.median(samples) * 1e3

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/runs.db"
        return {
            "approved round trip, in-process (µs, median)": asyncio.run(round_trips()),
            "resolve + resume to tool start, SQLite (ms, median)": asyncio.run(resolve_resume(url)),
        }


def _child(path: str, runs: int) -> dict[str, float]:
    """One measurement in a fresh interpreter importing afk from ``path``."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "--runs", str(runs)],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
        cwd=path,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _best(rounds: list[dict[str, float]]) -> dict[str, float]:
    # The fastest round of each: this VM's noise only ever adds time.
    return {name: min(r[name] for r in rounds) for name in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=BEFORE, help="git revision for the 'before' column")
    parser.add_argument("--runs", type=int, default=200, help="timed durable runs per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per column")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.runs)))
        return
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", args.against, "afk"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        before, after = [], []
        for _ in range(args.rounds):  # alternate, so drift in the machine hits both columns
            before.append(_child(old, args.runs))
            after.append(_child(str(repo), args.runs))
    best_before, best_after = _best(before), _best(after)
    print(f"{'measure':<54} {'before':>10} {'after':>10} {'change':>8}")
    for name, value in best_after.items():
        old_value = best_before[name]
        print(f"{name:<54} {old_value:>10.1f} {value:>10.1f} {value / old_value - 1:>+8.1%}")
    print(f"(before: {args.against}; best of {args.rounds} alternating rounds; target: < +10%)")


if __name__ == "__main__":
    main()
