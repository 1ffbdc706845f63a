"""Many paused runs, two ``afk worker`` processes, and every refund paid exactly once.

Needs a PostgreSQL server. From a checkout:

    pip install -e ".[postgres]"
    export AFK_STORE=postgresql://USER:PASSWORD@HOST:5432/DBNAME
    export AFK_SECRET_KEY=$(python -c "import secrets; print(secrets.token_hex(32))")
    python examples/multi_worker_postgres.py --runs 20

The script starts RUNS refund runs that each pause for an approval, starts two workers
(``afk worker --app multi_worker_postgres:app``, as you would on two machines), approves
every request, waits until every run has completed, stops the workers with SIGTERM, and
prints who resumed what and how often each refund ran, counted both from the payment file
the tool writes (AFK_EXAMPLE_PAID, else a new temp file) and from the store's decision
ledger. It exits 1 unless every refund ran exactly once. The processes share only the store
and AFK_SECRET_KEY.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.approvals import ApprovalDecision, Principal
from afk.core import Runner, RunnerConfig
from afk.errors import ConfigurationError
from afk.llms import ScriptedModel, ToolCall
from afk.store import RunStore
from afk.tools import tool

HERE = Path(__file__).resolve().parent
PAID_ENV = "AFK_EXAMPLE_PAID"  # the payment file every worker appends to


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund an order.

    Args:
        order_id: The order to refund.
        amount: How much to refund, in dollars.
    """
    time.sleep(0.05)  # a payment API takes a moment: the work spreads over both workers
    line = json.dumps({"order_id": order_id, "amount": amount, "pid": os.getpid()}) + "\n"
    with open(os.environ[PAID_ENV], "a", encoding="utf-8") as out:  # one short append: atomic
        out.write(line)
    return f"refunded {amount} on {order_id}"


policy = PolicyEngine(
    [PolicyRule("refunds", tool="refund", action="request_approval", reason="Approve refunds.")]
)


def billing_agent(order_id: str = "", amount: int = 0) -> Agent:
    """The scripted model picks its turn from the conversation: the call in the snapshot is
    what resumes, so the workers' agent need not know the order."""
    model = ScriptedModel([ToolCall("refund", {"order_id": order_id, "amount": amount}), "Done."])
    return Agent(name="billing", model=model, instructions="You refund.", tools=[refund])


def app() -> dict[str, Any]:
    """What each ``afk worker --app multi_worker_postgres:app`` resumes runs with."""
    runner = Runner(policy, config=RunnerConfig(interaction_mode="external"))
    return {"runner": runner, "agents": [billing_agent()]}


def start_worker(name: str) -> subprocess.Popen[str]:
    # The workers import this file as `multi_worker_postgres`, as `cd examples` would allow.
    path = [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    argv = [sys.executable, "-m", "afk", "worker", "--app", "multi_worker_postgres:app", "--json"]
    print(f"worker {name}: afk worker --app multi_worker_postgres:app")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


async def wait_until_done(
    store: RunStore, run_ids: list[str], workers: dict[str, subprocess.Popen[str]], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = [await store.load_run(r) for r in run_ids]
        if all(r is not None and r.status == "completed" for r in records):
            return
        dead = [name for name, proc in workers.items() if proc.poll() is not None]
        if dead:
            raise SystemExit(
                f"worker {dead[0]} exited early (status {workers[dead[0]].returncode})"
            )
        await asyncio.sleep(0.2)
    raise SystemExit(f"runs not completed after {timeout_s:.0f} s")


async def executions_in_ledger(store: RunStore, run_ids: list[str]) -> collections.Counter[str]:
    """How often each run's tool started, as the store's decision ledger records it."""
    counts: collections.Counter[str] = collections.Counter()
    wanted = set(run_ids)
    after = 0
    while entries := await store.list_log(after_id=after, limit=1000):
        counts.update(
            e.run_id for e in entries if e.kind == "execution_started" and e.run_id in wanted
        )
        after = entries[-1].id
    return counts


def stop(workers: dict[str, subprocess.Popen[str]]) -> None:
    """SIGTERM each worker (it finishes what it is doing and exits); say what it resumed."""
    for name, proc in workers.items():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        # --json: one object per resumed run (other lines, if any, are not runs).
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        done = [r["run_id"] for r in lines if r.get("state") == "completed"]
        print(f"worker {name}: resumed {len(done)} run(s), exit status {proc.returncode}")


async def pause_approve_resume(runner: Runner, runs: int) -> list[str]:
    assert runner.store is not None
    paused = [
        await runner.run(billing_agent(f"B-{i:04d}", 100 + i), user_message="refund")
        for i in range(runs)
    ]
    print(f"{runs} runs paused, each waiting for one approval")
    workers = {name: start_worker(name) for name in ("A", "B")}
    try:
        alice = Principal(id="alice", authenticated_by="example")
        for result in paused:
            [request] = result.pending_requests
            await runner.resolve(
                request.request_id, ApprovalDecision(kind="allow"), principal=alice
            )
        print(f"{runs} requests approved by alice")
        run_ids = [r.run_id for r in paused]
        await wait_until_done(runner.store, run_ids, workers, timeout_s=120)
    finally:
        stop(workers)
    return run_ids


async def main(runs: int) -> int:
    async with Runner(policy, config=RunnerConfig(interaction_mode="external")) as runner:
        run_ids = await pause_approve_resume(runner, runs)
        assert runner.store is not None
        ledger = await executions_in_ledger(runner.store, run_ids)
    paid_file = Path(os.environ[PAID_ENV])
    print(f"payments were written to {paid_file}")
    lines = paid_file.read_text().splitlines()
    paid = collections.Counter(json.loads(line)["order_id"] for line in lines)
    print(
        f"payments: {len(lines)} for {len(paid)} orders; "
        f"ledger: {sum(ledger.values())} executions for {len(ledger)} runs"
    )
    once = paid == {f"B-{i:04d}": 1 for i in range(runs)} and ledger == dict.fromkeys(run_ids, 1)
    print("every refund ran exactly once" if once else "MISMATCH: see the counts above")
    return 0 if once else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="how many runs to pause (20)")
    args = parser.parse_args()
    if not os.environ.get("AFK_STORE", "").startswith(("postgresql://", "postgres://")):
        sys.exit("set AFK_STORE to a postgresql:// URL (see the docstring)")
    os.environ.setdefault(PAID_ENV, str(Path(tempfile.mkdtemp(prefix="afk-paid-")) / "paid.jsonl"))
    try:
        sys.exit(asyncio.run(main(args.runs)))
    except ConfigurationError as exc:  # e.g. psycopg missing: the message names the extra
        sys.exit(f"multi_worker_postgres.py: {exc}")
