"""Structured output in a durable run: the retry count is read from the conversation, so a run
that pauses for an approval between two invalid answers and resumes in another Runner counts
the retry made before the pause (on both stores)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool


class Refund(BaseModel):
    order_id: str
    amount: float


@tool
def refund(order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: the order
    """
    return f"refunded {order_id}"


POLICY = PolicyEngine(rules=[PolicyRule("gate", action="request_approval")])
EXTERNAL = RunnerConfig(interaction_mode="external")


def agent(retries: int) -> Agent:
    turns = ["not json", ToolCall("refund", {"order_id": "A1"}), "still not json"]
    turns.append('{"order_id": "A1", "amount": 5}')
    model = ScriptedModel(turns)
    return Agent("refunds", model, tools=[refund], output_type=Refund, max_output_retries=retries)


@pytest.mark.parametrize(("retries", "state"), [(2, "completed"), (1, "failed")])
async def test_retries_before_a_pause_count_after_the_resume(
    store_url: str, retries: int, state: str
) -> None:
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as first:
        paused = await first.run(agent(retries), user_message="refund A1")
    assert paused.state == "paused", paused.error
    [request] = paused.pending_requests
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as second:
        await second.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
        done = await second.resume(paused.run_id, agent(retries))
    assert done.state == state, done.error
    if state == "completed":
        assert done.output == Refund(order_id="A1", amount=5.0)
    else:
        assert done.output is None and "max_output_retries=1" in (done.error or "")
