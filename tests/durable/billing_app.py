"""A billing agent for durable-run tests, importable by the test processes.

Its refund tool appends one line per execution to the file named by AFK_TEST_SIDE_EFFECTS,
so tests can count executions across processes. The model is a pure function of the
conversation, so any process resumes it the same way.
"""

from __future__ import annotations

import os
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import ToolContext, tool


def _record(line: str) -> None:
    path = os.environ["AFK_TEST_SIDE_EFFECTS"]
    with open(path, "a") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


@tool
def refund(order: str, amount: int, ctx: ToolContext) -> str:
    """Refund an order."""
    _record(f"{order} {amount} {ctx.idempotency_key}")
    if os.environ.get("AFK_TEST_CRASH_IN_TOOL") == order:
        os.kill(os.getpid(), 9)  # the process dies between "executing" and "result"
    return f"refunded {amount} on {order}"


@tool(idempotent=True)
def refund_idempotent(order: str, amount: int) -> str:
    """Refund an order; the payment API dedupes on the idempotency key."""
    _record(f"{order} {amount}")
    if os.environ.get("AFK_TEST_CRASH_IN_TOOL") == order:
        os.kill(os.getpid(), 9)
    return f"refunded {amount} on {order}"


def _billing_model(messages: list[Any], tools: list[Any]) -> Any:
    order = next(m.content for m in messages if isinstance(m, UserMessage))
    results = [m for m in messages if isinstance(m, ToolMessage)]
    if not results:
        name = "refund_idempotent" if order.startswith("idem") else "refund"
        return ToolCall(name, {"order": order, "amount": 250})
    return ModelResponse(text=f"{order}: {results[-1].content}")


policy = PolicyEngine(
    [
        PolicyRule(
            "refunds-need-approval",
            condition=lambda e: e.tool_name is not None and e.tool_name.startswith("refund"),
            action="request_approval",
            reason="Refunds need a human.",
        )
    ]
)


def billing_agent() -> Agent:
    return Agent(
        "billing",
        FunctionModel(_billing_model, name="billing-model"),
        "You issue refunds.",
        tools=[refund, refund_idempotent],
    )
