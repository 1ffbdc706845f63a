"""What durable runs write into the ledger: policy decisions (``Durable.log_policy``) and tool
outcomes (the ``execution_finished`` entry), on both backends; the chain stays sound."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

from audit_support import Where

from afk.agents import Agent, PolicyDecision, PolicyEngine, PolicyEvent, ShadowResult
from afk.audit import ExecutionFinished, ExecutionStarted, PolicyDecided, ShadowRule, verify
from afk.audit.entries import from_log
from afk.core import Runner
from afk.core._durable import Durable
from afk.llms import ScriptedModel, ToolCall
from afk.store.store import RunStore
from afk.tools import tool


@tool
def transfer(amount: int) -> str:
    """Move money.

    Args:
        amount: How much.
    """
    if amount > 100:
        raise ValueError("over the limit")
    return f"moved {amount}"


def durable_for(store: RunStore, run_id: str) -> Durable:
    facts, emitter = SimpleNamespace(run_id=run_id), SimpleNamespace(seq=0)
    return Durable(
        cast(Any, facts), store, emitter=cast(Any, emitter), owner="test", lease_ttl_s=30.0
    )


async def test_log_policy_appends_the_decision(store: RunStore) -> None:
    durable = durable_for(store, "run-9")
    event = PolicyEvent(
        run_id="run-9", step=2, agent_name="bank", tool_name="transfer",
        tool_args={"amount": 500}, tool_call_id="call_1",
    )  # fmt: skip
    decision = PolicyDecision(
        action="request_approval", rule_id="big", matched_rules=("big", "all"), reason="> 100",
        shadow=(ShadowResult(action="deny", rule_id="strict", would_change=True),),
    )  # fmt: skip
    await durable.log_policy(event, decision)
    model_call = PolicyEvent(event_type="llm_before_execute", run_id="run-9", step=3)
    await durable.log_policy(model_call, PolicyDecision(action="allow"))
    assert await store.list_log() == []  # queued for the run's next write
    await durable.flush_log()

    tool_entry, model_entry = await store.list_log()
    assert (tool_entry.kind, tool_entry.run_id, tool_entry.actor) == (
        "policy_decision", "run-9", "policy",
    )  # fmt: skip
    assert json.loads(tool_entry.payload) == {
        "event": "tool_before_execute", "step": 2, "tool": "transfer", "tool_call_id": "call_1",
        "args_digest": store.keys.digest({"amount": 500}), "action": "request_approval",
        "rule": "big", "matched": ["big", "all"], "reason": "> 100",
        "shadow": [{"rule": "strict", "action": "deny", "would_change": True}],
    }  # fmt: skip
    assert from_log(tool_entry) == PolicyDecided(
        run_id="run-9", actor="policy", event="tool_before_execute", step=2, tool="transfer",
        tool_call_id="call_1", args_digest=store.keys.digest({"amount": 500}),
        action="request_approval", rule="big", matched=("big", "all"), reason="> 100",
        shadow=(ShadowRule(rule="strict", action="deny", would_change=True),), at=tool_entry.at,
    )  # fmt: skip
    details = json.loads(model_entry.payload)
    assert (details["event"], details["tool"], details["action"]) == (
        "llm_before_execute", None, "allow",
    )  # fmt: skip
    assert "shadow" not in details
    assert (await verify(store)).ok


async def test_tool_outcomes_are_in_the_ledger(where: Where) -> None:
    model = ScriptedModel(
        [ToolCall("transfer", {"amount": 5}), ToolCall("transfer", {"amount": 500}), "Done."]
    )
    agent = Agent("bank", model, "You move money.", tools=[transfer])
    async with Runner(PolicyEngine(), store=where.url) as runner:
        result = await runner.run(agent, user_message="pay")
        assert result.state == "completed", result
        assert runner.store is not None
        log = await runner.store.list_log()
        started = [e for e in map(from_log, log) if isinstance(e, ExecutionStarted)]
        finished = [e for e in map(from_log, log) if isinstance(e, ExecutionFinished)]
        keys = runner.store.keys  # the ledger's digests are keyed, like the stored ones
        assert [s.args_digest for s in started] == [
            keys.digest({"amount": 5}),
            keys.digest({"amount": 500}),
        ]
        ok, failed = ((f.tool_call_id, f.args_digest, f.success, f.error) for f in finished)
        assert ok == (started[0].tool_call_id, started[0].args_digest, True, None)
        error = "ValueError: over the limit"
        assert failed == (started[1].tool_call_id, started[1].args_digest, False, error)
        assert all(s.tool_call_id for s in started)
        assert (await verify(runner.store)).ok
