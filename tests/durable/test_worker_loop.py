"""The one worker loop (``Runner.work``, which ``afk worker`` runs): it resumes a decided run
as soon as the decision is committed, fires reminders, takes over a dead process's runs at
once, runs ``concurrency`` runs at a time, says why it leaves a ready run alone, and on stop
lets the runs in progress finish."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from billing_app import billing_agent, policy
from durable_support import lines, track

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig, RunResult
from afk.core._worker import CannotResume, Resumed, TimerSent, TookOver, WorkerReport
from afk.core.events import event_from_row
from afk.errors import ConfigurationError
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import tool

EXTERNAL = RunnerConfig(interaction_mode="external")
ALICE = ApprovalDecision(kind="allow", approver="alice")


class Worker:
    """``Runner.work`` in a background task, with its reports collected."""

    def __init__(self, runner: Runner, agents: list[Agent], **options: Any) -> None:
        self.reports: list[WorkerReport] = []
        self.stop = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(
            runner.work(agents, stop=self.stop, on_report=self.reports.append, **options)
        )

    def resumed(self) -> list[RunResult]:
        return [r.result for r in self.reports if isinstance(r, Resumed)]

    async def until(self, test: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not test():
            assert not self.task.done(), self.task
            assert time.monotonic() < deadline, f"timed out; reports: {self.reports}"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def _paused(runner: Runner, order: str) -> RunResult:
    result = await runner.run(billing_agent(), user_message=order)
    assert result.state == "paused"
    return result


async def test_a_decision_wakes_the_worker_and_the_run_completes(
    store_url: str, side_effects: Path
) -> None:
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    paused = await _paused(runner, "o-1")
    # A long safety-net poll: only the store's wake-up can make this prompt.
    worker = Worker(runner, [billing_agent()], poll_s=30.0)
    await asyncio.sleep(0.2)
    assert worker.resumed() == []  # nothing decided, nothing resumed
    deciding = track(Runner(policy, config=EXTERNAL, store=store_url))
    started = time.monotonic()
    await deciding.resolve(paused.pending_requests[0].request_id, ALICE)
    await worker.until(lambda: worker.resumed())
    assert time.monotonic() - started < 5.0
    [result] = worker.resumed()
    assert (result.run_id, result.state) == (paused.run_id, "completed")
    await worker.close()
    assert lines(side_effects)[0].startswith("o-1 250")
    assert len(lines(side_effects)) == 1


async def test_work_fires_reminders(store_url: str, side_effects: Path) -> None:
    reminded = PolicyEngine(
        [PolicyRule("gate", tool="refund", action="request_approval", remind_after_s=0.2)]
    )
    sent: list[Any] = []
    runner = track(Runner(reminded, config=EXTERNAL, store=store_url, notifier=sent.append))
    paused = await _paused(runner, "o-2")
    worker = Worker(runner, [billing_agent()], poll_s=0.05)
    await worker.until(lambda: any(isinstance(r, TimerSent) for r in worker.reports))
    await worker.close()
    [reminder] = sent
    assert (reminder.kind, reminder.request.run_id) == ("remind", paused.run_id)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process
    return proc.pid


async def test_a_dead_holders_run_is_taken_over_at_once(store_url: str, side_effects: Path) -> None:
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    paused = await _paused(runner, "o-3")
    await runner.resolve(paused.pending_requests[0].request_id, ALICE)
    assert runner.store is not None
    dead = f"{socket.gethostname()}:{_dead_pid()}:deadbeef"
    # The dead worker took the run and then died: its lease would hold the run for 10 min.
    assert await runner.store.acquire_lease(paused.run_id, owner=dead, ttl_s=600, now=time.time())
    worker = Worker(runner, [billing_agent()], poll_s=0.05)
    await worker.until(lambda: worker.resumed())
    await worker.close()
    assert TookOver(run_id=paused.run_id, dead_owner=dead) in worker.reports
    assert worker.resumed()[0].state == "completed"
    assert len(lines(side_effects)) == 1


@pytest.mark.slow
async def test_a_run_held_by_a_live_worker_is_reported_once(
    store_url: str, side_effects: Path
) -> None:
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    held = await _paused(runner, "o-4")
    await runner.resolve(held.pending_requests[0].request_id, ALICE)
    assert runner.store is not None
    other = "elsewhere:1:cafe"  # another host's worker: never presumed dead
    now = time.time()
    assert await runner.store.acquire_lease(held.run_id, owner=other, ttl_s=600, now=now)
    worker = Worker(runner, [billing_agent()], poll_s=0.05)
    await worker.until(lambda: any(isinstance(r, CannotResume) for r in worker.reports))
    await asyncio.sleep(1.2)  # at least one more survey: still said once
    await worker.close()
    [said] = [r for r in worker.reports if isinstance(r, CannotResume)]
    assert (said.run_id, said.reason, said.detail) == (held.run_id, "held", f"held by {other}")
    assert said.until == pytest.approx(now + 600, abs=1)
    assert worker.resumed() == [] and lines(side_effects) == []


async def test_unknown_agent_is_said_once(store_url: str, side_effects: Path) -> None:
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    paused = await _paused(runner, "o-5")
    await runner.resolve(paused.pending_requests[0].request_id, ALICE)
    worker = Worker(runner, [Agent("support", billing_agent().model, "x")], poll_s=0.05)
    await worker.until(lambda: any(isinstance(r, CannotResume) for r in worker.reports))
    await asyncio.sleep(1.2)  # at least one more survey
    await worker.close()
    [said] = [r for r in worker.reports if isinstance(r, CannotResume)]
    assert (said.run_id, said.reason) == (paused.run_id, "unknown_agent")
    assert "'billing' is not defined by this app (agents: support)" in said.detail
    assert lines(side_effects) == []


STARTED: list[float] = []


@tool
async def slow_refund(order: str) -> str:
    """Refund slowly."""
    STARTED.append(time.monotonic())
    await asyncio.sleep(0.5)
    return f"refunded {order}"


def _slow_model(messages: list[Any], tools: list[Any]) -> Any:
    order = next(m.content for m in messages if isinstance(m, UserMessage))
    if not any(isinstance(m, ToolMessage) for m in messages):
        return ToolCall("slow_refund", {"order": order})
    return ModelResponse(text="done")


def _slow_agent() -> Agent:
    return Agent("slow", FunctionModel(_slow_model), "x", tools=[slow_refund])


async def test_concurrency_runs_that_many_at_once_and_stop_lets_them_finish(
    store_url: str,
) -> None:
    gate = PolicyEngine([PolicyRule("gate", tool="slow_refund", action="request_approval")])
    runner = track(Runner(gate, config=EXTERNAL, store=store_url))
    runs = [await runner.run(_slow_agent(), user_message=f"o-{i}") for i in range(3)]
    for run in runs:
        await runner.resolve(run.pending_requests[0].request_id, ALICE)
    STARTED.clear()
    worker = Worker(runner, [_slow_agent()], concurrency=3, poll_s=30.0)
    await worker.until(lambda: len(STARTED) == 3)
    assert max(STARTED) - min(STARTED) < 0.4  # all three bodies overlap
    await worker.close()  # stop while the bodies sleep: they finish, the runs complete
    assert sorted(r.state for r in worker.resumed()) == ["completed"] * 3
    assert runner.store is not None
    for run in runs:
        record = await runner.store.load_run(run.run_id)
        assert record is not None and record.lease_owner is None


async def test_work_refuses_bad_options(store_url: str) -> None:
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    with pytest.raises(ConfigurationError, match="concurrency must be an int >= 1, got 0"):
        await runner.work([billing_agent()], concurrency=0)
    with pytest.raises(ConfigurationError, match="poll_s must be a number > 0"):
        await runner.work([billing_agent()], poll_s=0)


def test_external_mode_waits_days_by_default_and_interactive_minutes() -> None:
    assert RunnerConfig(interaction_mode="external").approval_timeout_s == 3 * 24 * 3600
    assert RunnerConfig(interaction_mode="external").input_timeout_s == 3 * 24 * 3600
    assert RunnerConfig(interaction_mode="interactive").approval_timeout_s == 300
    assert RunnerConfig(interaction_mode="external", approval_timeout_s=60).approval_timeout_s == 60


async def test_an_expired_request_is_reported_as_expired(
    store_url: str, side_effects: Path
) -> None:
    short = RunnerConfig(interaction_mode="external", approval_timeout_s=0.3)
    runner = track(Runner(policy, config=short, store=store_url))
    paused = await _paused(runner, "o-6")
    worker = Worker(runner, [billing_agent()], poll_s=30.0)  # the expiry itself wakes it
    await worker.until(lambda: worker.resumed(), timeout=10)
    await worker.close()
    [result] = worker.resumed()
    assert result.run_id == paused.run_id and result.state == "completed"
    [expired] = result.expired_calls
    assert (expired.tool_name, expired.denied, expired.executed) == ("refund", True, False)
    assert lines(side_effects) == []
    # The run's last event says so too, also as the store keeps it.
    assert result.events[-1].expired_calls == (expired.tool_call_id,)  # type: ignore[union-attr]
    assert runner.store is not None
    last = (await runner.store.list_events(paused.run_id))[-1]
    assert event_from_row(last, {}).expired_calls == (expired.tool_call_id,)  # type: ignore[union-attr]


_PREPARED = """
import asyncio, json, sys, typing
from afk.core import Runner, RunnerConfig, _snapshot, events

async def main():
    runner = Runner(config=RunnerConfig(interaction_mode="external"), store=sys.argv[1])
    stop = asyncio.Event()
    work = asyncio.create_task(runner.work([], stop=stop, poll_s=0.05))
    await asyncio.sleep(0.3)  # started, and waiting for work: no run resumed yet
    built = [_snapshot._adapter.cache_info().currsize, len(events._DUMPERS)]
    stop.set()
    await work
    await runner.aclose()
    print(json.dumps(built + [len(typing.get_args(events.Event))]))

asyncio.run(main())
"""


def test_a_worker_builds_what_a_resume_needs_before_its_first_wait(tmp_path: Path) -> None:
    # A fresh process: the worker's first decision must not wait for pydantic's adapters
    # (the snapshot's, every event's), which a resume would otherwise build on first use.
    store = f"sqlite:///{tmp_path}/runs.db"
    proc = subprocess.run(
        [sys.executable, "-c", _PREPARED, store], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    snapshot_adapters, event_adapters, event_classes = json.loads(proc.stdout.splitlines()[-1])
    assert snapshot_adapters >= 1 and event_adapters == event_classes
