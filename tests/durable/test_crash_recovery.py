"""Runs survive kill -9: paused runs are listed, approved and resumed by other processes, and
every approved tool body runs exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from durable_support import HERE, lines, run_script

pytestmark = pytest.mark.slow  # processes killed and restarted: seconds each

N = 100

START_INTERACTIVE_AND_HANG = """
import asyncio, sys
from billing_app import billing_agent, policy
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig

async def main():
    runner = Runner(policy, InMemoryInteractiveProvider(),
                    RunnerConfig(interaction_mode="interactive", approval_timeout_s=3600),
                    store=sys.argv[1], lease_ttl_s=1.0)
    handles = [runner.run_stream(billing_agent(), user_message=f"order-{i}") for i in range({n})]
    while len(await runner.pending_requests(limit=1000)) < {n}:
        await asyncio.sleep(0.05)
    print("WAITING", flush=True)
    await asyncio.gather(*(h.result() for h in handles))  # killed before any decision

asyncio.run(main())
"""

START_EXTERNAL_AND_EXIT = """
import asyncio, sys
from billing_app import billing_agent, policy
from afk.core import Runner, RunnerConfig

async def main():
    runner = Runner(policy, config=RunnerConfig(interaction_mode="external"), store=sys.argv[1])
    results = [await runner.run(billing_agent(), user_message=f"order-{i}") for i in range({n})]
    print(sum(r.state == "paused" for r in results))

asyncio.run(main())
"""

APPROVE_ALL = """
import asyncio, sys
from afk.agents import ApprovalDecision
from afk.core import Runner

async def main():
    runner = Runner(store=sys.argv[1])
    pending = await runner.pending_requests(limit=1000)
    for request in pending:
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="bob"))
    print(len(pending))

asyncio.run(main())
"""

WORKER_UNTIL_DONE = """
import asyncio, sys, time
from billing_app import billing_agent, policy
from afk.core import Runner, RunnerConfig

async def main():
    runner = Runner(policy, config=RunnerConfig(interaction_mode="external"), store=sys.argv[1])
    done, deadline = 0, time.monotonic() + 60
    while done < {n} and time.monotonic() < deadline:
        results = await runner.resume_ready([billing_agent()])
        done += sum(r.state == "completed" for r in results)
        if not results:
            await asyncio.sleep(0.2)
    print(done)

asyncio.run(main())
"""


def _script(template: str) -> str:
    return template.replace("{n}", str(N))


def _assert_each_refunded_once(side_effects: Path) -> None:
    orders = [line.split()[0] for line in lines(side_effects)]
    assert sorted(orders) == sorted(f"order-{i}" for i in range(N))  # each exactly once


def test_runs_waiting_in_a_killed_process_are_resumed_elsewhere_exactly_once(
    store_url: str, side_effects: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    with subprocess.Popen(
        [sys.executable, "-c", _script(START_INTERACTIVE_AND_HANG), store_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as waiter:
        try:
            assert waiter.stdout is not None
            assert waiter.stdout.readline().strip() == "WAITING"
        finally:
            waiter.send_signal(signal.SIGKILL)
            waiter.wait(timeout=10)
    assert waiter.returncode == -signal.SIGKILL
    assert lines(side_effects) == []

    approved = run_script(_script(APPROVE_ALL).replace("sys.argv[1]", repr(store_url)))
    assert approved.strip() == str(N)  # all 100 listed as pending from a new process
    time.sleep(1.1)  # the dead process's leases run out
    resumed = run_script(_script(WORKER_UNTIL_DONE).replace("sys.argv[1]", repr(store_url)))
    assert resumed.strip() == str(N)
    _assert_each_refunded_once(side_effects)


def test_decisions_made_while_no_process_runs_are_picked_up_by_a_worker(
    store_url: str, side_effects: Path
) -> None:
    started = run_script(_script(START_EXTERNAL_AND_EXIT).replace("sys.argv[1]", repr(store_url)))
    assert started.strip() == str(N)
    approved = run_script(_script(APPROVE_ALL).replace("sys.argv[1]", repr(store_url)))
    assert approved.strip() == str(N)
    resumed = run_script(_script(WORKER_UNTIL_DONE).replace("sys.argv[1]", repr(store_url)))
    assert resumed.strip() == str(N)
    _assert_each_refunded_once(side_effects)
