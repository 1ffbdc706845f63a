"""A finance agent: refunds over 100 need two approvers from group finance."""

from __future__ import annotations

from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import tool

executed: list[dict[str, Any]] = []


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    executed.append({"order": order, "amount": amount})
    return f"refunded {amount} on {order}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    amount = int(next(m.content for m in messages if isinstance(m, UserMessage)))
    done = [m for m in messages if isinstance(m, ToolMessage)]
    if not done:
        return ToolCall("refund", {"order": f"o-{amount}", "amount": amount})
    return ModelResponse(text=done[-1].content)


def finance_policy(**rule: Any) -> PolicyEngine:
    settings: dict[str, Any] = {"approvers": ("group:finance",), "quorum": 2} | rule
    return PolicyEngine(
        [
            PolicyRule(
                "big-refunds",
                tool="refund*",
                when={"amount": {"gt": 100}},
                action="request_approval",
                reason="Refunds over 100 need finance sign-off.",
                **settings,
            )
        ],
        groups={"finance": ["alice", "bob", "carol"], "cfo": ["dana"]},
    )


def finance_agent() -> Agent:
    return Agent("billing", FunctionModel(_model, name="billing"), "Refunds.", tools=[refund])
