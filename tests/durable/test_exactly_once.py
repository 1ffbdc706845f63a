"""Exactly the approved arguments, at most once: digests, crash windows and racing workers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from billing_app import billing_agent, policy
from durable_support import lines, run_script, track

from afk.agents import ApprovalDecision
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.store import _packed as pk

EXTERNAL = RunnerConfig(interaction_mode="external")


def external(store_url: str) -> Runner:
    return track(Runner(policy, config=EXTERNAL, store=store_url))


async def _paused_and_approved(store_url: str, order: str) -> str:
    paused = await external(store_url).run(billing_agent(), user_message=order)
    request_id = paused.pending_requests[0].request_id
    await external(store_url).resolve(request_id, ApprovalDecision(kind="allow", approver="ann"))
    return request_id


def _tamper(store_url: str, request_id: str) -> None:
    """Change the stored arguments behind the approval's back, as a rogue DB user would."""
    query = "SELECT request FROM {t} WHERE request_id = %s"
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            (text,) = db.execute(
                "SELECT request FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            data = json.loads(pk.unpack("request", text))  # stored deflated (store schema 8)
            data["tool_args"]["amount"] = 99_999
            db.execute(
                "UPDATE requests SET request = ? WHERE request_id = ?",
                (pk.pack("request", json.dumps(data)), request_id),
            )
        return
    import psycopg

    dsn, schema = store_url.split("?afk_schema=")
    table = f'"{schema}".requests'
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query.format(t=table), (request_id,)).fetchone()
        assert row is not None
        data = json.loads(pk.unpack("request", row[0]))
        data["tool_args"]["amount"] = 99_999
        forged = pk.pack("request", json.dumps(data))
        conn.execute(f"UPDATE {table} SET request = %s WHERE request_id = %s", (forged, request_id))


async def test_arguments_changed_in_the_store_after_approval_are_refused_and_recorded(
    store_url: str, side_effects: Path
) -> None:
    request_id = await _paused_and_approved(store_url, "order-t")
    _tamper(store_url, request_id)
    [done] = await external(store_url).resume_ready([billing_agent()])
    assert lines(side_effects) == []
    [execution] = done.tool_executions
    assert not execution.executed and "does not verify" in (execution.error or "")
    store = external(store_url).store
    assert store is not None
    await store.setup()
    log = await store.list_log()
    assert any(e.kind == "tamper_detected" and e.request_id == request_id for e in log)


CRASH_WHILE_RESUMING = """
import asyncio, sys
from billing_app import billing_agent, policy
from afk.core import Runner, RunnerConfig

async def main():
    runner = Runner(policy, config=RunnerConfig(interaction_mode="external"), store=sys.argv[1],
                    lease_ttl_s=0.5)
    await runner.resume_ready([billing_agent()])

asyncio.run(main())
"""


def _crash_mid_tool(store_url: str, order: str) -> None:
    import os
    import subprocess
    import sys

    from durable_support import HERE

    env = {**os.environ, "PYTHONPATH": str(HERE), "AFK_TEST_CRASH_IN_TOOL": order}
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_WHILE_RESUMING, store_url], env=env, capture_output=True
    )
    assert proc.returncode == -9, proc.stderr


async def test_a_crash_inside_a_non_idempotent_tool_is_reported_not_rerun(
    store_url: str, side_effects: Path
) -> None:
    await _paused_and_approved(store_url, "order-c")
    _crash_mid_tool(store_url, "order-c")
    assert len(lines(side_effects)) == 1  # the body ran once, then the process died
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    results = []
    for _ in range(50):  # until the dead process's lease (0.5 s) runs out
        results = await runner.resume_ready([billing_agent()])
        if results:
            break
        await asyncio.sleep(0.2)
    [done] = results
    assert len(lines(side_effects)) == 1  # not run again
    [execution] = done.tool_executions
    assert not execution.success and "outcome unknown" in (execution.error or "")
    assert "outcome unknown" in (done.final_text or "")


async def test_a_crash_inside_an_idempotent_tool_reruns_it(
    store_url: str, side_effects: Path
) -> None:
    await _paused_and_approved(store_url, "idem-order")
    _crash_mid_tool(store_url, "idem-order")
    runner = track(Runner(policy, config=EXTERNAL, store=store_url))
    results = []
    for _ in range(50):  # until the dead process's lease (0.5 s) runs out
        results = await runner.resume_ready([billing_agent()])
        if results:
            break
        await asyncio.sleep(0.2)
    [done] = results
    assert lines(side_effects) == ["idem-order 250", "idem-order 250"]
    assert done.tool_executions[0].success


async def test_two_workers_racing_for_one_run_execute_it_once(
    store_url: str, side_effects: Path
) -> None:
    paused = await external(store_url).run(billing_agent(), user_message="order-r")
    await external(store_url).resolve(
        paused.pending_requests[0].request_id, ApprovalDecision(kind="allow")
    )
    first, second = external(store_url), external(store_url)
    outcomes = await asyncio.gather(
        first.resume(paused.run_id, billing_agent()),
        second.resume(paused.run_id, billing_agent()),
        return_exceptions=True,
    )
    states = sorted(type(o).__name__ if isinstance(o, BaseException) else o.state for o in outcomes)
    # The loser either finds the lease taken, or (if it came second) the run already ended.
    assert states in (["RunLockedError", "completed"], ["RunNotResumableError", "completed"])
    assert len(lines(side_effects)) == 1


async def test_a_decision_from_another_process_wakes_an_interactive_run(
    store_url: str, side_effects: Path
) -> None:
    runner = track(
        Runner(
            policy,
            InMemoryInteractiveProvider(),
            RunnerConfig(interaction_mode="interactive", approval_timeout_s=30),
            store=store_url,
        )
    )
    handle = runner.run_stream(billing_agent(), user_message="order-w")
    while not await runner.pending_requests():
        await asyncio.sleep(0.02)
    approve = """
import asyncio, sys
from afk.agents import ApprovalDecision
from afk.core import Runner
async def main():
    runner = Runner(store=sys.argv[1])
    [request] = await runner.pending_requests()
    await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="cli"))
asyncio.run(main())
""".replace("sys.argv[1]", repr(store_url))
    await asyncio.to_thread(run_script, approve)
    result = await asyncio.wait_for(handle.result(), timeout=5)
    assert result.state == "completed"
    assert len(lines(side_effects)) == 1
    resolved = next(e for e in result.events if e.type == "approval_resolved")
    assert resolved.approver == "cli"  # type: ignore[union-attr]
