"""A running tool's question for the run's human (an MCP server's elicitation, say): asked
as a user-input request through the run's interaction provider, like one a rule opens.

Only interactive runs without a store can ask mid-call. A headless run has nobody to ask, an
external run pauses between steps rather than inside a call, and a run with a store writes a
request before the step pauses, which a running call cannot do: there the tool gets no
``ask_user`` and has to do without (an MCP elicitation is declined: failing closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from afk.agents.policy import PolicyDecision
from afk.approvals.requests import UserInputDecision

if TYPE_CHECKING:
    from afk.core._asking import Asking
    from afk.core._durable import Durable
    from afk.core._facts import RunFacts

AskUser = Callable[[str], Awaitable["str | None"]]


def tool_asker(
    asking: Asking,
    facts: RunFacts,
    durable: Durable | None,
    step: int,
    tool_name: str,
    tool_args: dict[str, Any],
    tool_call_id: str,
) -> AskUser | None:
    """``ToolContext.ask_user`` for one call, or None where no human can answer mid-call."""
    if facts.headless or facts.external or durable is not None:
        return None

    async def ask_user(prompt: str) -> str | None:
        # No rule opened it: rule_id stays None and the prompt is the question itself.
        decision = PolicyDecision(action="request_user_input", reason=prompt)
        request = asking.new_request(
            step, decision, tool_name=tool_name, tool_args=tool_args, tool_call_id=tool_call_id
        )
        [asked] = await asking.open(step, [request])
        answer, decided_by = await asking.ask(step, request, asked=asked)
        if decided_by != "human" or not isinstance(answer, UserInputDecision):
            return None  # a timeout, an error or a fallback answers nothing
        return answer.value if answer.kind == "allow" else None

    return ask_user
