"""A tree of three agents for sub-agent tests, importable by test processes: ``boss`` calls
``manager`` (a sub-agent) and refunds R1; the manager calls ``clerk`` and refunds R2 and R3;
the clerk refunds R4 and R5. Every refund is gated by the boss's runner policy, so one run
pauses on five requests. Each refund appends a line to $AFK_TEST_SIDE_EFFECTS; the agent
named by $AFK_TEST_CRASH_IN_MODEL kills its process when its model is called with its tools'
results (after its calls ran, before its run ends)."""

from __future__ import annotations

import os
from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage
from afk.tools import tool


@tool
def refund(order: str) -> str:
    """Refund an order."""
    with open(os.environ["AFK_TEST_SIDE_EFFECTS"], "a") as out:
        out.write(order + "\n")
        out.flush()
        os.fsync(out.fileno())
    return f"refunded {order}"


def _model(name: str, orders: list[str], sub: str | None) -> Any:
    def turn(messages: list[Any], tools: list[Any]) -> Any:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            if os.environ.get("AFK_TEST_CRASH_IN_MODEL") == name:
                os.kill(os.getpid(), 9)
            return ModelResponse(text=" / ".join(m.content for m in results))
        calls = [ToolCall("refund", {"order": o}) for o in orders]
        if sub is not None:
            calls.append(ToolCall(sub, {"input": "do your part"}))
        return calls

    return turn


POLICY = PolicyEngine([PolicyRule("refunds", tool="refund", action="request_approval")])


def tree() -> Agent:
    clerk = Agent("clerk", FunctionModel(_model("clerk", ["R4", "R5"], None)), "c", tools=[refund])
    manager = Agent(
        "manager",
        FunctionModel(_model("manager", ["R2", "R3"], "clerk")),
        "m",
        tools=[refund, clerk.as_tool()],
    )
    return Agent(
        "boss",
        FunctionModel(_model("boss", ["R1"], "manager")),
        "b",
        tools=[refund, manager.as_tool()],
    )
