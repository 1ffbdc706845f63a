"""A chat agent for conversation-thread tests: its model answers from the whole
conversation, so a test sees what history a run started from."""

from __future__ import annotations

from typing import Any

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.llms.messages import AssistantMessage
from afk.tools import ToolContext, tool

EXECUTED: list[str] = []


@tool
def refund(order: str, ctx: ToolContext) -> str:
    """Refund an order."""
    EXECUTED.append(order)
    db = ctx.context.get("db")
    return f"refunded {order}" + (f" via {db.name}" if db is not None else "")


def _chat(messages: list[Any], tools: list[Any]) -> Any:
    users = [m.content for m in messages if isinstance(m, UserMessage)]
    last = users[-1]
    since = messages[max(i for i, m in enumerate(messages) if isinstance(m, UserMessage)) :]
    if last.startswith("refund ") and not any(isinstance(m, ToolMessage) for m in since):
        return ToolCall("refund", {"order": last.removeprefix("refund ")})
    if last == "fail":
        return ToolCall("no_such_tool_at_all", {})
    turns = sum(1 for m in messages if isinstance(m, AssistantMessage))
    return ModelResponse(text=f"heard {' | '.join(users)} ({turns} turns before)")


def chat_agent() -> Agent:
    return Agent("chat", FunctionModel(_chat, name="chat-model"), "You chat.", tools=[refund])


def gated() -> PolicyEngine:
    return PolicyEngine(
        [PolicyRule("refunds", tool="refund", action="request_approval", reason="money")]
    )


def roles(messages: list[Any]) -> list[str]:
    """Each message as role:text, for comparing conversations."""
    out = []
    for m in messages:
        text = getattr(m, "content", None) or getattr(m, "text", None) or ""
        calls = [c.name for c in getattr(m, "tool_calls", ()) or ()]
        out.append(f"{m.role}:{text}" + (f"{calls}" if calls else ""))
    return out
