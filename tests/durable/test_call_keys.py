"""Exactly-once keys: an ungated call is keyed by its step, position and arguments, not by the
model's call id, so a model that reuses an id (in a later step, or twice in one step) cannot
make a call return an earlier call's stored result instead of running. A gated call keeps its
request id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billing_app import billing_agent, policy, refund
from durable_support import lines, track

from afk.agents import Agent, ApprovalDecision
from afk.core import Runner, RunnerConfig
from afk.core._snapshot import args_digest
from afk.llms import FunctionModel, ToolCall, ToolMessage

# The model reuses "call_1": twice in step 1, once more in step 2.
STEPS = [
    [
        ToolCall("refund", {"order": "o1", "amount": 1}, "call_1"),
        ToolCall("refund", {"order": "o2", "amount": 2}, "call_1"),
    ],
    [ToolCall("refund", {"order": "o3", "amount": 3}, "call_1")],
]


def _reusing_model(messages: list[Any], tools: list[Any]) -> Any:
    done = sum(1 for m in messages if getattr(m, "role", None) == "assistant")
    return STEPS[done] if done < len(STEPS) else "All refunded."


async def test_a_reused_tool_call_id_runs_each_call_on_both_stores(
    store_url: str, side_effects: Path
) -> None:
    runner = track(Runner(config=RunnerConfig(interaction_mode="headless"), store=store_url))
    agent = Agent("billing", FunctionModel(_reusing_model), "i", tools=[refund])

    result = await runner.run(agent, user_message="refund all three")

    assert result.state == "completed"
    contents = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert contents == ["refunded 1 on o1", "refunded 2 on o2", "refunded 3 on o3"]
    assert all(e.executed and e.success for e in result.tool_executions)
    run_id = result.run_id
    # run:step:position, then the digest of the arguments: a step re-run after a crash that
    # proposes another call at the same position is another call, not the first one's result.
    digest = {o: args_digest({"order": o, "amount": int(o[1])})[:16] for o in ("o1", "o2", "o3")}
    assert sorted(lines(side_effects)) == [
        f"o1 1 {run_id}:1:0:{digest['o1']}",
        f"o2 2 {run_id}:1:1:{digest['o2']}",
        f"o3 3 {run_id}:2:0:{digest['o3']}",
    ]


async def test_a_gated_call_is_keyed_by_its_request(store_url: str, side_effects: Path) -> None:
    config = RunnerConfig(interaction_mode="external")
    paused = await track(Runner(policy, config=config, store=store_url)).run(
        billing_agent(), user_message="order-k"
    )
    [request] = paused.pending_requests
    resumer = track(Runner(policy, config=config, store=store_url))
    await resumer.resolve(request.request_id, ApprovalDecision(kind="allow"))

    [done] = await resumer.resume_ready([billing_agent()])

    assert done.state == "completed"
    assert lines(side_effects) == [f"order-k 250 {request.request_id}"]
