"""A durable run paused in one process and resumed in another is one trace."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from otel_support import attrs, children, errors, last_line, memory_tracing, named
from traced_app import refund_agent, refund_policy

from afk.agents import ApprovalDecision
from afk.core import Runner, RunnerConfig
from afk.core.events import ApprovalResolved

# The process that starts the run: it pauses (external mode) and prints its spans.
_START = """
import json, sys
from otel_support import as_dicts, memory_tracing
from traced_app import refund_agent, refund_policy
from afk.core import Runner, RunnerConfig
from afk.core.events import ApprovalResolved

tracing, exporter = memory_tracing()
mode = RunnerConfig(interaction_mode="external")
runner = Runner(refund_policy(), config=mode, store=sys.argv[1], tracing=tracing)
result = runner.run_sync(refund_agent(), user_message="refund o-1")
assert result.state == "paused", (result.state, result.error)
[request] = result.pending_requests
print(json.dumps({
    "state": result.state,
    "run_id": result.run_id,
    "request_id": request.request_id,
    "created_at": request.created_at,
    "spans": as_dicts(exporter.get_finished_spans()),
}))
"""


def start_elsewhere(store_url: str) -> dict[str, Any]:
    started: dict[str, Any] = json.loads(last_line(_START, store_url))
    return started


def external(store_url: str, tracing: object) -> Runner:
    mode = RunnerConfig(interaction_mode="external")
    return Runner(refund_policy(), config=mode, store=store_url, tracing=tracing)


async def test_a_run_resumed_in_another_process_continues_its_trace(store_url: str) -> None:
    started = start_elsewhere(store_url)
    assert started["state"] == "paused"
    first = {s["name"]: s for s in started["spans"]}
    paused = first["invoke_agent billing"]
    assert paused["attributes"]["afk.run.state"] == "paused"
    assert [s["status"] for s in started["spans"]] == ["UNSET"] * len(started["spans"])
    assert "await_approval refund" not in first  # undecided: its span is made on decision

    tracing, exporter = memory_tracing()
    async with external(store_url, tracing) as runner:
        stored = await runner.store.load_run(started["run_id"])  # type: ignore[union-attr]
        assert stored is not None
        context = json.loads(stored.snapshot)["trace_context"]
        version, trace_id, span_id, _flags = context["traceparent"].split("-")
        assert (version, trace_id, span_id) == (
            "00",
            f"{paused['trace_id']:032x}",
            f"{paused['span_id']:016x}",
        )
        decision = ApprovalDecision(kind="allow", approver="alice")
        assert await runner.resolve(started["request_id"], decision) == "decided"
        done = await runner.resume(started["run_id"], refund_agent())
    assert done.state == "completed"

    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans if s.context} == {paused["trace_id"]}
    resumed = named(spans, "invoke_agent billing")
    assert resumed.parent is not None and resumed.parent.span_id == paused["span_id"]
    assert attrs(resumed)["afk.run.resumed"] is True
    assert attrs(resumed)["afk.run.state"] == "completed"
    # The resumed call meets the policy of now first (a deny rule added meanwhile stops it).
    assert children(spans, resumed) == [
        "evaluate_policy refund",
        "execute_tool refund",
        "chat claude-test",
    ]

    wait = named(spans, "await_approval refund")
    assert wait.parent is not None and wait.parent.span_id == paused["span_id"]
    assert wait.start_time == int(started["created_at"] * 1e9)
    [resolved] = [e for e in done.events if isinstance(e, ApprovalResolved)]
    found = attrs(wait)
    assert found["afk.approval.request_id"] == started["request_id"]
    assert found["afk.approval.rule_id"] == "refunds-need-approval"
    assert (found["afk.approval.approver"], found["afk.approval.decided_by"]) == ("alice", "human")
    assert found["afk.approval.wait_seconds"] == (resolved.ts - started["created_at"])
    assert errors(spans) == []


async def test_an_expired_request_ends_its_wait_without_an_error(store_url: str) -> None:
    first_tracing, first = memory_tracing()
    mode = RunnerConfig(interaction_mode="external", approval_timeout_s=0.05)
    async with Runner(refund_policy(), config=mode, store=store_url, tracing=first_tracing) as r:
        paused = await r.run(refund_agent(), user_message="refund o-1")
    [request] = paused.pending_requests
    await asyncio.sleep(0.1)
    tracing, exporter = memory_tracing()
    async with Runner(refund_policy(), config=mode, store=store_url, tracing=tracing) as runner:
        done = await runner.resume(paused.run_id, refund_agent())
    assert done.state == "completed"
    spans = exporter.get_finished_spans()
    wait = attrs(named(spans, "await_approval refund"))
    assert (wait["afk.approval.decided_by"], wait["afk.approval.expired"]) == ("timeout", True)
    assert wait["afk.approval.decision"] == "deny"
    assert wait["afk.approval.request_id"] == request.request_id
    assert errors([*first.get_finished_spans(), *spans]) == []


async def test_a_process_without_tracing_keeps_the_stored_trace_context(store_url: str) -> None:
    tracing, _exporter = memory_tracing()
    async with external(store_url, tracing) as runner:
        paused = await runner.run(refund_agent(), user_message="refund o-1")
        stored = await runner.store.load_run(paused.run_id)  # type: ignore[union-attr]
    assert stored is not None
    before = json.loads(stored.snapshot)["trace_context"]
    async with external(store_url, False) as runner:
        [request] = paused.pending_requests
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="alice"))
        done = await runner.resume(paused.run_id, refund_agent())
        ended = await runner.store.load_run(paused.run_id)  # type: ignore[union-attr]
    assert done.state == "completed"
    assert ended is not None and ended.snapshot != stored.snapshot
    assert json.loads(ended.snapshot)["trace_context"] == before
    assert before["traceparent"].startswith("00-")
