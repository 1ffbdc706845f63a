"""A refund agent for the tracing tests, importable by the processes they start."""

from __future__ import annotations

from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.llms import ModelResponse, ScriptedModel, ToolCall, Usage
from afk.tools import tool

REFUND = ToolCall("refund", {"order": "o-1", "amount": 250})


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


@tool
def lookup(order: str) -> str:
    """Look an order up (always allowed)."""
    return f"{order}: shipped"


@tool
def charge(order: str) -> str:
    """Charge an order; the payment service is down."""
    raise ConnectionError(f"payment service unreachable for {order}")


def refund_agent(*turns: Any, model: str = "anthropic:claude-test") -> Agent:
    """Asks for ``turns`` (by default: one refund, then a final answer), with token usage."""
    script = turns or (
        ModelResponse(tool_calls=[REFUND], usage=Usage(input_tokens=12, output_tokens=5)),
        ModelResponse(text="Refunded.", usage=Usage(input_tokens=20, output_tokens=3)),
    )
    return Agent(
        "billing",
        ScriptedModel(list(script), name=model),
        "You issue refunds.",
        tools=[refund, lookup, charge],
    )


def refund_policy(action: str = "request_approval") -> PolicyEngine:
    approvers = ("alice",) if action == "request_approval" else ()
    return PolicyEngine(
        [
            PolicyRule(
                "refunds-need-approval",
                tool="refund",
                action=action,  # type: ignore[arg-type]
                reason="Refunds need a human.",
                approvers=approvers,
            )
        ]
    )
