"""`afk runs show` marks a call whose request expired undecided, and the run that carried it.

A run pauses in external mode with a deadline of a few hundredths of a second; once that has
passed, ``afk worker --once`` resumes it and the fallback denies the refund. The run then
*completed*, but `runs show` must never say so plainly.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from durable_app import APP, Env, afk, billing_agent, make_env, policy, request_id, start

from afk.core import Runner, RunnerConfig, RunResult


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    return make_env(tmp_path, monkeypatch)


def _paused_with_a_short_deadline(env: Env) -> RunResult:
    async def go() -> RunResult:
        config = RunnerConfig(interaction_mode="external", approval_timeout_s=0.05)
        runner = Runner(policy, config=config, store=env.url)
        try:
            return await runner.run(billing_agent(amount=250), user_message="refund")
        finally:
            assert runner.store is not None
            await runner.store.close()

    result = asyncio.run(go())
    assert result.state == "paused", result
    return result


def _expired_run(env: Env) -> RunResult:
    run = _paused_with_a_short_deadline(env)
    time.sleep(0.1)  # past the request's deadline: the worker's fallback decides it
    worker = afk("worker", "--once", "--app", APP)
    assert worker.code == 0, worker.err
    assert worker.out.split()[:3] == [run.run_id, "completed,", "1"], worker.out
    assert env.executions() == []  # the fallback denied the refund
    return run


def test_show_marks_the_expired_call_its_request_and_the_run_state(env: Env) -> None:
    run = _expired_run(env)
    shown = afk("runs", "show", run.run_id, "--wide")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert "status        completed (1 call expired: refund)" in lines
    assert f"  request {request_id(run)} expired undecided: the fallback denied the call" in lines
    [call] = [line for line in lines if line.startswith("  refund ")]
    assert call.endswith("deny by fallback (request expired)")
    [last] = [line for line in lines if "run_completed" in line]
    assert last.endswith("run completed: Done. (1 call expired undecided)")


def test_show_json_marks_the_expired_call_its_request_and_the_run_state(env: Env) -> None:
    run = _expired_run(env)
    shown = afk("runs", "show", run.run_id, "--json").json()
    assert shown["run"]["status"] == "completed"  # the stored record, as stored
    assert shown["state"] == "completed (1 call expired: refund)"
    [expired] = shown["expired_calls"]
    assert expired["tool_name"] == "refund" and expired["denied"] is True
    assert expired["request_id"] == request_id(run)
    [request] = shown["requests"]
    assert request["status"] == "expired" and request["expired"] is True
    assert request["fallback"] == "expired undecided: the fallback denied the call"
    assert shown["events"][-1]["payload"]["expired_calls"] == [expired["tool_call_id"]]


def test_a_run_decided_in_time_reads_as_plain_completed(env: Env) -> None:
    run = start(env, amount=250)
    assert afk("approvals", "deny", request_id(run)).code == 0
    assert afk("worker", "--once", "--app", APP).code == 0
    text = afk("runs", "show", run.run_id).out.splitlines()
    assert "status        completed" in text
    assert not any("expired" in line for line in text)
    shown = afk("runs", "show", run.run_id, "--json").json()
    assert (shown["state"], shown["expired_calls"]) == ("completed", [])
    assert [r["expired"] for r in shown["requests"]] == [False]
