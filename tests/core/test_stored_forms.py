"""What a store holds of a run reads back whole: every snapshot a run writes loads (joined with
its run row, its request rows and the agent's instructions) as the snapshot it was written
from, and every stored event as the event the run emitted. And it is held once: no stored
event repeats a request or a tool schema, and the snapshot repeats neither the requests nor
the agent's instructions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import afk.core._durable as durable
from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule, UserInputDecision
from afk.approvals._rows import load_request
from afk.core import Runner, RunnerConfig
from afk.core._snapshot import RunSnapshot, dump_snapshot, load_snapshot
from afk.core.events import event_from_row
from afk.llms import ModelResponse, ScriptedModel, ToolCall
from afk.tools import tool

INSTRUCTIONS = "You refund orders, after looking them up. " * 20  # long, as real ones are


@tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"{order}: paid"


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


def agent() -> Agent:
    turns = [
        ModelResponse(tool_calls=[ToolCall("lookup", {"order": "A-1"}), refund_call()]),
        ToolCall("refund", {"order": "A-2", "amount": 7}),
        "Done.",
    ]
    return Agent("billing", ScriptedModel(turns), INSTRUCTIONS, tools=[lookup, refund])


def refund_call() -> ToolCall:
    return ToolCall("refund", {"order": "A-1", "amount": 250})


def rules(*extra: PolicyRule) -> PolicyEngine:
    refunds = PolicyRule(
        "refunds", tool="refund", action="request_approval", reason="Refunds need a human."
    )
    return PolicyEngine(rules=[refunds, *extra])


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[RunSnapshot, str]]]:
    """Every snapshot the runs write, with the text stored for it."""
    found: list[tuple[RunSnapshot, str]] = []

    def recording(snapshot: RunSnapshot) -> str:
        text = dump_snapshot(snapshot)
        found.append((snapshot, text))
        return text

    monkeypatch.setattr(durable, "dump_snapshot", recording)
    yield found


async def check_stored(runner: Runner, run_id: str, written: list[tuple[RunSnapshot, str]]) -> int:
    """Each snapshot written for ``run_id`` loads back as itself; each stored event reads back
    as the event emitted. Returns how many snapshots were checked."""
    store = runner.store
    assert store is not None
    record = await store.load_run(run_id)
    assert record is not None
    rows = await store.list_requests(run_id=run_id, status=None)
    requests = {r.request_id: load_request(r) for r in rows}
    mine = [(s, text) for s, text in written if s.run_id == run_id]
    for snapshot, text in mine:
        assert INSTRUCTIONS not in text  # the agent holds them
        assert '"tool_schema"' not in text and '"tool_args"' not in text  # the requests do
        assert (
            load_snapshot(text, record=record, requests=requests, system=agent().system_message)
            == snapshot
        )
    return len(mine)


async def stored_events(runner: Runner, run_id: str) -> list[Any]:
    store = runner.store
    assert store is not None
    rows = await store.list_requests(run_id=run_id, status=None)
    requests = {r.request_id: load_request(r) for r in rows}
    events = await store.list_events(run_id)
    for row in events:
        payload = json.loads(row.payload)
        assert not {"run_id", "seq", "type", "ts"} & set(payload)  # the row's own columns
        assert "request" not in payload and "tool_schema" not in row.payload
    return [event_from_row(row, requests) for row in events]


async def test_external_runs_store_every_snapshot_and_event_whole_and_once(
    store_url: str, written: list[tuple[RunSnapshot, str]]
) -> None:
    config = RunnerConfig(interaction_mode="external")
    async with Runner(rules(), config=config, store=store_url) as runner:
        run = await runner.run(agent(), user_message="refund A-1", thread_id="t-1")
        run_id, emitted, edit = run.run_id, list(run.events), {"order": "A-1", "amount": 200}
        while run.state == "paused":
            [request] = run.pending_requests
            decision = ApprovalDecision(kind="allow", approver="ann", updated_tool_args=edit)
            await runner.resolve(request.request_id, decision)
            run, edit = await runner.resume(run_id, agent()), None
            emitted += run.events
        assert run.state == "completed", run.error
        assert [(e.tool_name, e.executed) for e in run.tool_executions] == [
            ("lookup", True),
            ("refund", True),
            ("refund", True),
        ]
        # a paused step with a settled call, a paused step alone, the run's end
        assert await check_stored(runner, run_id, written) >= 4
        assert await stored_events(runner, run_id) == emitted


async def test_a_gated_model_call_and_user_input_are_stored_whole(
    store_url: str, written: list[tuple[RunSnapshot, str]]
) -> None:
    ask = PolicyRule("why", tool="lookup", action="request_user_input", reason="Why?")
    model_gate = PolicyRule(
        "model", action="request_approval", event_types=("llm_before_execute",), reason="ok?"
    )
    config = RunnerConfig(interaction_mode="external")
    async with Runner(rules(ask, model_gate), config=config, store=store_url) as runner:
        run = await runner.run(agent(), user_message="refund A-1", requested_by="bob")
        emitted = list(run.events)
        while run.state == "paused":
            for request in run.pending_requests:
                decision: Any = ApprovalDecision(kind="allow", approver="ann")
                if request.kind == "user_input":
                    decision = UserInputDecision(kind="allow", value="why not", approver="ann")
                await runner.resolve(request.request_id, decision)
            run = await runner.resume(run.run_id, agent())
            emitted += run.events
        assert run.state == "completed", run.error
        kinds = {e.request.kind for e in emitted if e.type.endswith("_requested")}
        assert kinds == {"approval", "user_input"}
        assert await check_stored(runner, run.run_id, written) >= 3
        assert await stored_events(runner, run.run_id) == emitted
